"""MoA-CLIP ablation tables (the paper's Tables 3-6), trained on FF++ and rendered beside the reported numbers.

Each table varies one switch; the `where` filters pin the other switches at their defaults, so a run from one
ablation sweep never fills a row of another. The param names are those of MoA-CLIP's config (detector.ablate,
detector.adapter_dim, detector.backbone.arch) and of the protocol (protocol.train.domains); edit them here if
they change. An empty string in a Match also accepts runs that do not log that param (e.g. clip_probe has no
adapters). `bench leaderboard --table ablation_losses --experiment demo` renders the demo-scale sweeps.
"""

from __future__ import annotations

from bench.leaderboards.spec import Match, RowKey, TableSpec

# Training-domain lists as logged (str of the protocol's list): FF++'s four manipulations and the demo's families.
FFPP_ALL = "['Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures']"
DEMO_ALL = "['blend', 'gan_upsample', 'warp', 'double_jpeg']"

MOA = Match("tags.bench.detector", ("moa_clip",))
ALL_LOSSES = Match("params.detector.ablate", ("none", ""))
DEFAULT_DIM = Match("params.detector.adapter_dim", ("128", ""))
DEFAULT_ARCH = Match("params.detector.backbone.arch", ("ViT-B-32", "ViT-L-14"), exclude=True)  # B/16 or a tiny one
ALL_DOMAINS = Match("params.protocol.train.domains", (FFPP_ALL, DEMO_ALL))

LOSSES = TableSpec(
    name="ablation_losses",
    description="MoA-CLIP without each regularisation loss (paper Table 3), frame-level AUC",
    experiments=("ff_to_all",),
    test_sets=("CDF-v2", "DFDC", "DFD"),
    setting=RowKey("params.detector.ablate", "losses", {
        "none": "all losses", "sim": "w/o L_sim", "att": "w/o L_att", "cac": "w/o L_cac"}),
    where=(MOA, DEFAULT_DIM, DEFAULT_ARCH, ALL_DOMAINS),
    hint="bench run -m protocol=ff_to_all detector=moa_clip detector.ablate=none,sim,att,cac",
)

BACKBONE = TableSpec(
    name="ablation_backbone",
    description="MoA-CLIP with different CLIP ViT backbones (paper Table 4), frame-level AUC",
    experiments=("ff_to_all",),
    test_sets=("CDF-v2", "DFDC", "DFD"),
    average=("CDF-v2", "DFDC", "DFD"),
    setting=RowKey("params.detector.backbone.arch", "backbone", {
        "ViT-B-32": "ViT-B/32", "ViT-B-16": "ViT-B/16", "ViT-L-14": "ViT-L/14"}),
    where=(MOA, ALL_LOSSES, DEFAULT_DIM, ALL_DOMAINS),
    hint="bench run -m protocol=ff_to_all detector=moa_clip detector.backbone.arch=ViT-B-32,ViT-B-16,ViT-L-14",
    footnotes=("The paper prints its third backbone as \"ViT-B/14\"; CLIP has no such model, read as ViT-L/14.",),
)

ADAPTER = TableSpec(
    name="ablation_adapter",
    description="MoA-CLIP adapter hidden dimension d_a (paper Table 5), frame-level AUC",
    experiments=("ff_to_all",),
    test_sets=("CDF-v2", "DFDC", "DFDC-P", "DFD"),
    average=("CDF-v2", "DFDC", "DFDC-P", "DFD"),
    setting=RowKey("params.detector.adapter_dim", "adapter dim"),
    where=(MOA, ALL_LOSSES, DEFAULT_ARCH, ALL_DOMAINS),
    hint="bench run -m protocol=ff_to_all detector=moa_clip detector.adapter_dim=64,128,256",
    footnotes=("The paper's text says the adapters use d_a = 256, but its headline numbers equal the 128 row.",),
)

DOMAINS = TableSpec(
    name="ablation_domains",
    description="Number of training domains / domain adapters N (paper Table 6), MoA-CLIP beside the CLIP baselines",
    experiments=("ff_to_all",),
    test_sets=("FF", "CDF-v2", "DFD"),
    average=("FF", "CDF-v2", "DFD"),
    setting=RowKey("params.protocol.train.domains", "train domains", {
        "['Deepfakes', 'FaceSwap']": "DF+FS",
        "['Deepfakes', 'FaceSwap', 'NeuralTextures']": "DF+FS+NT",
        FFPP_ALL: "FF++ (all)",
    }),
    where=(Match("tags.bench.detector", ("moa_clip", "clip_ft", "clip_probe")), ALL_LOSSES, DEFAULT_DIM, DEFAULT_ARCH),
    footnotes=("FF: FF++ c23's test split (the paper does not say whether of all four manipulations or only of "
               "the training ones).",),
    hint="bench run -m protocol=ff_to_all detector=moa_clip,clip_ft "
         "'protocol.train.domains=[Deepfakes,FaceSwap],[Deepfakes,FaceSwap,NeuralTextures]'",
)

TABLES = (LOSSES, BACKBONE, ADAPTER, DOMAINS)
