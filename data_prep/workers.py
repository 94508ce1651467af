"""Runs BlockProcessor over a stream of blocks, in order, in one or more processes.

One process overlaps TF tokenization (which releases the GIL) with Python
packing on a second thread. With several processes each worker tokenizes,
packs and serializes whole blocks while this process reads the input and
writes the shards.
"""

import collections
import concurrent.futures
import contextlib
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import threading
import traceback

from data_prep import block_processing

# Modules a forkserver loads once, so each worker it forks starts with TF.
_PRELOAD = ["electra_tf.text.tokenization", "data_prep.block_processing"]
_BLOCKS_IN_FLIGHT_PER_WORKER = 2


@contextlib.contextmanager
def ordered_processing(config, num_processes):
    """Yields process(blocks) -> iterator of (index, records, stats), in order.

    Workers start when this is entered, so enter it before anything else
    that should not be forked (open shard writers, threads).
    """
    if num_processes == 1:
        processor = block_processing.BlockProcessor(config)
        yield lambda blocks: _overlapped_in_process(processor, blocks)
        return
    with _exchange_directory() as directory, \
            _started_workers(config, num_processes, directory) as workers:
        yield lambda blocks: _through_workers(workers, blocks, directory)


def _overlapped_in_process(processor, blocks):
    """Tokenizes the next blocks on a thread while packing this one.

    Two blocks queue for the tokenizer, so a slow pack (a shard buffer
    flushing) does not leave it idle.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as tokenizer_thread:
        pending = collections.deque()
        for block in blocks:
            pending.append(tokenizer_thread.submit(processor.tokenize, block))
            if len(pending) > 2:
                yield processor.pack(pending.popleft().result())
        while pending:
            yield processor.pack(pending.popleft().result())


# Blocks and results travel as files (in memory under /dev/shm) and only
# their indices through pipes: a pipe holds 64 KB, so a 250 KB result
# crosses it in several reads, each waiting for the GIL; and a worker
# blocked sending a result while this process is blocked sending it a block
# would deadlock.

@contextlib.contextmanager
def _exchange_directory():
    shm = "/dev/shm"
    parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    directory = tempfile.mkdtemp(prefix="data_prep-", dir=parent)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _dump(directory, kind, index, value):
    with open(os.path.join(directory, f"{kind}-{index}"), "wb") as f:
        f.write(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


def _load(directory, kind, index):
    path = os.path.join(directory, f"{kind}-{index}")
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return pickle.loads(data)


def _through_workers(workers, blocks, directory):
    pending = collections.deque()
    for i, (index, documents) in enumerate(blocks):
        worker = workers[i % len(workers)]  # the order results are read in
        _dump(directory, "block", index, documents)
        try:
            worker.connection.send(index)
        except ConnectionError:
            raise _died(worker) from None
        pending.append(worker)
        if len(pending) >= _BLOCKS_IN_FLIGHT_PER_WORKER * len(workers):
            yield _result(pending.popleft(), directory)
    while pending:
        yield _result(pending.popleft(), directory)


def _result(worker, directory):
    try:
        status, payload = worker.connection.recv()
    except (EOFError, ConnectionError):
        raise _died(worker) from None
    if status == "error":
        raise RuntimeError(f"a data preparation worker failed:\n{payload}")
    return _load(directory, "result", payload)


def _died(worker):
    worker.process.join(1)
    return RuntimeError("a data preparation worker died (exit code "
                        f"{worker.process.exitcode})")


def _serve(connection, config, directory):
    """A worker's loop: block index in, result index out, None to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        block_processing.init_worker(config, 1)  # one TF thread per worker
        while (index := connection.recv()) is not None:
            documents = _load(directory, "block", index)
            _dump(directory, "result", index,
                  block_processing.process_in_worker((index, documents)))
            connection.send(("done", index))
    except Exception:  # pylint: disable=broad-except
        connection.send(("error", traceback.format_exc()))


Worker = collections.namedtuple("Worker", "process connection")


@contextlib.contextmanager
def _started_workers(config, num_processes, directory):
    context = _worker_context()
    workers = []
    try:
        for _ in range(num_processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, daemon=True,
                                      args=(theirs, config, directory))
            process.start()
            theirs.close()
            workers.append(Worker(process, ours))
        yield workers
        for worker in workers:
            worker.connection.send(None)
        for worker in workers:
            worker.process.join(10)
    finally:
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
            worker.connection.close()


def _tf_runtime_started():
    from tensorflow.python.eager import context  # pylint: disable=g-import-not-at-top
    # Under absl's app.run importing TF already creates the context object,
    # but its runtime (devices, thread pools) starts only with the first op.
    # If the attribute is ever renamed, assume the worst.
    current = context.context_safe()
    return current is not None and getattr(current, "_initialized", True)


def _worker_context():
    """fork while that is safe, else a forkserver that has loaded TF.

    Importing TF and tf-text (~4 s here) starts no thread; TF's runtime does,
    once an op runs, and a forked child would inherit its locks half-held.
    So a process that has only imported TF forks workers that start with
    it loaded; one that has run TF (a notebook, a test session) or runs
    other threads uses a forkserver, a fresh process that imports TF once
    and forks every worker from there.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from electra_tf.text import tokenization  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    if threading.active_count() == 1 and not _tf_runtime_started():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context
