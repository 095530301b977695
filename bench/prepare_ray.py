"""`prepare.backend=ray`: every video is a Ray task, so a preparation spreads over every machine of a Ray cluster.

Each task runs `bench.crops.prepare_video` on its node and writes the crops and `done.json` under the dataset's
cache folder, which must be a path every node sees (a shared file system). The driver (the `bench prepare`
process) collects the `VideoResult`s and writes the manifest atomically, exactly as the process pool does, so the
two backends give the same manifest. Resume works across the cluster: a video whose `done.json` exists is not
submitted again, whichever node prepared it. Ray is optional: `pip install "forgerybench[ray]"`.

    ray start --head                                        # on the first machine; then on every other one:
    ray start --address=<head>:6379
    bench prepare dataset=ffpp prepare.backend=ray prepare.ray_address=auto paths.cache=/shared/cache
"""

from __future__ import annotations

from collections.abc import Callable

from bench.config import PrepareConfig
from bench.crops import VideoJob, VideoResult, prepare_video
from bench.errors import BenchError
from bench.faces import FaceDetector, build_face_detector

_detectors: dict[type, FaceDetector] = {}  # one per Ray worker process and detector class


def _prepare_task(job: VideoJob, cfg: PrepareConfig, detector_cls: type[FaceDetector]) -> VideoResult:
    import cv2

    if detector_cls not in _detectors:
        cv2.setNumThreads(1)  # one task per CPU: Ray schedules the parallelism
        _detectors[detector_cls] = build_face_detector(detector_cls, cfg.face_detector_options)
    return prepare_video(job, cfg, _detectors[detector_cls], threads=1)


def run_ray(todo: list[VideoJob], cfg: PrepareConfig, detector_cls: type[FaceDetector],
            done: Callable[[VideoJob, VideoResult], None]) -> None:
    try:
        import ray
    except ImportError:
        raise BenchError('prepare.backend=ray needs Ray: pip install "forgerybench[ray]" (or ray>=2.9)',
                         key="prepare.backend") from None
    started = not ray.is_initialized()
    if started:
        options = {"num_cpus": cfg.workers} if cfg.workers and not cfg.ray_address else {}
        try:
            ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=False, **options)
        except ConnectionError as err:
            raise BenchError(f"cannot reach the Ray cluster at {cfg.ray_address!r}: {err}", key="prepare.ray_address") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(_prepare_task)  # a node lost mid-video is retried elsewhere
        pending = {task.remote(job, cfg, detector_cls): job for job in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                done(pending.pop(ref), ray.get(ref))
    finally:
        if started:
            ray.shutdown()
