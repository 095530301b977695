"""The example dataset: a labels.csv listing every image, as many in-house datasets ship."""

from __future__ import annotations

import csv

from bench.dataset import DatasetAdapter
from bench.errors import BenchError
from bench.records import REAL_DOMAIN, Sample
from bench_toy_plugin.config import ToyFacesConfig


class ToyFaces(DatasetAdapter):
    name = "toy_faces"
    description = "example plugin dataset: images listed in labels.csv"
    config_class = ToyFacesConfig
    cfg: ToyFacesConfig

    def _rows(self) -> list[dict[str, str]]:
        path = self.root / self.cfg.labels  # self.root names datasets.toy_faces.root / TOY_FACES_ROOT when missing
        if not path.is_file():
            raise BenchError(f"dataset {self.name!r}: {path} does not exist", key=f"datasets.{self.name}.labels")
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))

    def domains(self) -> list[str]:
        return sorted({r["domain"] for r in self._rows()} - {REAL_DOMAIN})

    def samples(self, split: str) -> list[Sample]:
        return [Sample(dataset=self.name, split=split, domain=r["domain"], label=int(r["label"]),
                       video=f"{self.name}/{r['video']}", frame=int(r["frame"]), path=str(self.root / r["path"]))
                for r in self._rows() if r["split"] == split]
