"""The local backend of `bench prepare`: videos in this process, or in a pool of worker processes that die with it.

A `kill -9` of `bench prepare` cannot run any cleanup in the parent, so the workers watch for it themselves: on
Linux the kernel sends them SIGKILL when the parent dies (`prctl(PR_SET_PDEATHSIG)`), and everywhere a daemon
thread checks once a second that the parent is still their parent (`os.getppid()` changes when it dies). Without
this, orphaned workers finished their queue and then blocked forever.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from bench.config import PrepareConfig
from bench.crops import VideoJob, VideoResult, prepare_video
from bench.faces import FaceDetector, build_face_detector

PR_SET_PDEATHSIG = 1  # linux/prctl.h

_worker_detector: FaceDetector | None = None  # one per worker process (detectors hold unpicklable native state)


def die_with_parent(parent: int) -> None:
    """Make this process exit when process `parent` dies (call first thing in a worker)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _init_worker(parent: int, detector_cls: type[FaceDetector], cfg: PrepareConfig) -> None:
    import cv2

    global _worker_detector
    die_with_parent(parent)
    cv2.setNumThreads(1)  # parallelism comes from the processes
    _worker_detector = build_face_detector(detector_cls, cfg.face_detector_options)


def _run_job(job: VideoJob, cfg: PrepareConfig) -> VideoResult:
    assert _worker_detector is not None
    return prepare_video(job, cfg, _worker_detector, threads=1)


def run_pool(todo: list[VideoJob], cfg: PrepareConfig, detector_cls: type[FaceDetector], detector: FaceDetector,
             done: Callable[[VideoJob, VideoResult], None]) -> None:
    """Run `prepare_video` on every job, calling `done(job, result)` in the parent as each finishes."""
    workers = min(cfg.workers or os.cpu_count() or 1, max(len(todo), 1))
    if workers <= 1:
        for job in todo:  # one process: let the decoder use its threads
            done(job, prepare_video(job, cfg, detector, threads=0))
        return
    import multiprocessing

    # spawn, not fork: OpenCV's and FFmpeg's thread pools do not survive a fork
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(os.getpid(), detector_cls, cfg)) as pool:
        futures = {pool.submit(_run_job, job, cfg): job for job in todo}
        try:
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
