"""FaceForensics++ (Rössler et al., ICCV 2019), read as the official download script lays it out.

Layout (``<c>`` is ``raw``, ``c23`` or ``c40``)::

    <root>/original_sequences/youtube/<c>/videos/000.mp4 ... 999.mp4
    <root>/manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4

Faithful to the source: the official split files ``train.json`` / ``val.json`` / ``test.json`` from the
FaceForensics repository (``dataset/splits/``), lists of ``[a, b]`` pairs (360 / 70 / 70). The real videos ``a``
and ``b`` belong to the pair's split, and so do both fakes ``a_b`` and ``b_a``: a split of P pairs holds 2P real
videos and 2P fakes per method (c23 test: 140 real + 140 per method). FaceShifter (added to FF++ later) uses the
same pairs and is read when listed in ``methods``.

Our choices: video keys are ``ffpp/<domain>/<name>`` (``ffpp/Deepfakes/000_003``, ``ffpp/real/000``) because
``000_003`` exists under every method; a fake's ``source`` is its target id (the first one, whose video it
alters), a real video's is its own id, so real videos can be matched to the fakes made from them. Only the
configured methods and compression must be on disk; a listed video that is missing fails loudly. Split files are
looked for in ``splits_dir``, else ``<root>/splits/``, else the root; their ids must be plain names (letters and
digits), so no entry can point outside the root. Where the release ships a fake's manipulation mask
(``manipulated_sequences/<Method>/masks/videos/<stem>.mp4``), ``bench prepare`` chooses the face inside it
(``masks=false`` turns that off). DeepFakeDetection videos shipped in the same tree are a separate dataset (``dfd``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bench.dataset import SPLITS, DatasetConfig, VideoDatasetAdapter, VideoRecord
from bench.datasets._common import COMPRESSIONS, check_split, env_root, mask_video, raise_if_missing, read_json
from bench.errors import BenchError
from bench.records import FAKE, REAL, REAL_DOMAIN

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
KNOWN_METHODS = (*METHODS, "FaceShifter")
SPLITS_URL = "https://github.com/ondyari/FaceForensics/tree/master/dataset/splits"


@dataclass
class FFppConfig(DatasetConfig):
    name: str = "ffpp"
    root_env: ClassVar[str] = "BENCH_FFPP_ROOT"
    compression: str = "c23"  # raw | c23 | c40; cross-dataset papers train on c23 ("HQ")
    methods: list[str] = field(default_factory=lambda: list(METHODS))  # add FaceShifter where it was downloaded
    # Folder holding the official train.json / val.json / test.json; null = look in <root>/splits/, then the root.
    splits_dir: str | None = env_root("BENCH_FFPP_SPLITS")
    # Choose the face inside the manipulation mask (manipulated_sequences/<Method>/masks/videos/) where the release
    # has one, so a bystander's pristine face is never cropped for a fake; false = the tracked face as for real videos.
    masks: bool = True


class FFpp(VideoDatasetAdapter):
    name = "ffpp"
    description = "FaceForensics++ (Deepfakes, Face2Face, FaceSwap, NeuralTextures[, FaceShifter]; official splits)"
    config_class = FFppConfig

    cfg: FFppConfig  # built and env-resolved by the base class from config_class

    def domains(self) -> list[str]:
        return list(self._methods())

    def check(self) -> None:
        super().check()
        self._methods()
        self._compression()
        self._split_pairs()

    def videos(self, split: str) -> list[VideoRecord]:
        check_split(self.name, split)
        pairs = self._split_pairs()[split]
        c = self._compression()
        root = self.root.absolute()
        real_dir = root / "original_sequences" / "youtube" / c / "videos"
        records = [self._record(split, REAL_DOMAIN, REAL, i, real_dir / f"{i}.mp4", source=i)
                   for i in sorted({i for pair in pairs for i in pair})]
        for method in self._methods():
            fake_dir = root / "manipulated_sequences" / method / c / "videos"
            for a, b in pairs:
                for target, source in ((a, b), (b, a)):
                    stem = f"{target}_{source}"
                    records.append(self._record(split, method, FAKE, stem, fake_dir / f"{stem}.mp4", source=target,
                                                mask=mask_video(root / "manipulated_sequences" / method, stem,
                                                                self.cfg.masks)))
        raise_if_missing(
            self.name, (Path(r.path) for r in records), f"{split} videos listed by the split files ({c})",
            hint=f"download them with the FaceForensics script (-c {c} -t videos) or drop methods from "
                 f"datasets.{self.name}.methods",
            key=f"datasets.{self.name}.root")
        return records

    # ---- helpers ------------------------------------------------------------------------------------------
    def _record(self, split: str, domain: str, label: int, stem: str, path: Path, source: str,
                mask: str | None = None) -> VideoRecord:
        return VideoRecord(dataset=self.name, split=split, domain=domain, label=label,
                           video=f"{self.name}/{domain}/{stem}", path=str(path), source=source, mask=mask)

    def _methods(self) -> tuple[str, ...]:
        methods = tuple(self.cfg.methods)
        unknown = [m for m in methods if m not in KNOWN_METHODS]
        if unknown or not methods or len(set(methods)) != len(methods):
            hint = " (DeepFakeDetection is its own dataset: dfd)" if "DeepFakeDetection" in unknown else ""
            raise BenchError(f"dataset {self.name!r}: methods must be distinct names among {list(KNOWN_METHODS)}, "
                             f"got {list(methods)}{hint}", key=f"datasets.{self.name}.methods")
        return methods

    def _compression(self) -> str:
        if self.cfg.compression not in COMPRESSIONS:
            raise BenchError(f"dataset {self.name!r}: compression must be one of {list(COMPRESSIONS)}, "
                             f"got {self.cfg.compression!r}", key=f"datasets.{self.name}.compression")
        return self.cfg.compression

    def _split_pairs(self) -> dict[str, list[tuple[str, str]]]:
        """The official pairs per split, validated (well-formed, and no id in two splits)."""
        key = f"datasets.{self.name}.splits_dir"
        candidates = [Path(self.cfg.splits_dir).expanduser()] if self.cfg.splits_dir else [self.root / "splits", self.root]
        folder = next((f for f in candidates if all((f / f"{s}.json").is_file() for s in SPLITS)), None)
        if folder is None:
            raise BenchError(
                f"dataset {self.name!r}: the official split files train.json, val.json and test.json are not in "
                f"{' or '.join(map(str, candidates))}; get them from the FaceForensics GitHub repository's dataset/splits/ folder ({SPLITS_URL}) "
                f"and set {key}=/path/to/splits or export BENCH_FFPP_SPLITS=/path/to/splits", key=key)
        pairs: dict[str, list[tuple[str, str]]] = {}
        owner: dict[str, str] = {}
        for split in SPLITS:
            path = folder / f"{split}.json"
            data = read_json(self.name, path, "split file", key)
            if not isinstance(data, list) or not all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(i, str) and i.isalnum() for i in p) for p in data):
                raise BenchError(f"dataset {self.name!r}: {path} must be a JSON list of [a, b] pairs of video ids "
                                 f'such as [["953", "974"], ...] (ids are letters and digits only)', key=key)
            pairs[split] = [(a, b) for a, b in data]
            for i in (i for p in data for i in p):
                if owner.setdefault(i, split) != split:
                    raise BenchError(f"dataset {self.name!r}: video {i} is in both {owner[i]}.json and {split}.json; "
                                     f"use the unmodified official split files", key=key)
        return pairs
