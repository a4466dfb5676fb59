"""The seed list of papers, each with its status in this book.

The book's introduction renders this table, so the status shown to readers and
the notebooks that exist cannot drift apart (a test checks every listed
notebook exists).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    """One paper of the seed list."""

    key: str
    name: str
    title: str
    venue: str
    category: (
        str  # "attack", "plaintext defense", "encrypted aggregation", "evaluation"
    )
    side_information: str
    notebook: str | None = None  # path under notebooks/, without ".py"
    seed: bool = True  # on the seed list; False: a page of the book's own, not a paper

    @property
    def status(self) -> str:
        return "supported" if self.notebook else "planned"


PAPERS: tuple[Paper, ...] = (
    Paper(
        "dlg",
        "DLG",
        "Deep Leakage from Gradients",
        "NeurIPS 2019",
        "attack",
        "none",
        "attacks/dlg",
    ),
    Paper(
        "idlg",
        "iDLG",
        "iDLG: Improved Deep Leakage from Gradients",
        "arXiv 2020",
        "attack",
        "none",
        "attacks/idlg",
    ),
    Paper(
        "inverting_gradients",
        "Inverting Gradients",
        "Inverting Gradients - How easy is it to break privacy in federated learning?",
        "NeurIPS 2020",
        "attack",
        "BatchNorm statistics, private labels",
        "attacks/inverting_gradients",
    ),
    Paper(
        "rgap",
        "R-GAP",
        "R-GAP: Recursive Gradient Attack on Privacy",
        "ICLR 2021",
        "attack",
        "rank of the coefficient matrix",
        "attacks/rgap",
    ),
    Paper(
        "gradinversion",
        "GradInversion",
        "See through Gradients: Image Batch Recovery via GradInversion",
        "CVPR 2021",
        "attack",
        "BatchNorm statistics, approximate private labels",
        "attacks/gradinversion",
    ),
    Paper(
        "gias",
        "GIAS",
        "Gradient Inversion with Generative Image Prior",
        "NeurIPS 2021",
        "attack",
        "a GAN trained on the data distribution",
        "attacks/gias",
    ),
    Paper(
        "cafe",
        "CAFE",
        "CAFE: Catastrophic Data Leakage in Vertical Federated Learning",
        "NeurIPS 2021",
        "attack",
        "batch indices",
        "attacks/cafe",
    ),
    Paper(
        "dpsgd",
        "DP-SGD",
        "Deep Learning with Differential Privacy",
        "CCS 2016",
        "plaintext defense",
        "",
        "defenses/dpsgd",
    ),
    Paper(
        "pruning",
        "Gradient pruning",
        "Deep Leakage from Gradients (defense section)",
        "NeurIPS 2019",
        "plaintext defense",
        "",
        "defenses/pruning",
    ),
    Paper(
        "mixup",
        "MixUp",
        "mixup: Beyond Empirical Risk Minimization",
        "ICLR 2018",
        "plaintext defense",
        "",
        "defenses/mixup",
    ),
    Paper(
        "instahide",
        "InstaHide",
        "InstaHide: Instance-hiding Schemes for Private Distributed Learning",
        "ICML 2020",
        "plaintext defense",
        "",
        "defenses/instahide",
    ),
    Paper(
        "secagg",
        "Secure Aggregation",
        "Practical Secure Aggregation for Federated Learning on User-Held Data",
        "NeurIPS 2016 workshop",
        "encrypted aggregation",
        "",
        "defenses/secagg",
    ),
    Paper(
        "fastsecagg",
        "FastSecAgg",
        (
            "FastSecAgg: Scalable Secure Aggregation for Privacy-Preserving "
            "Federated Learning"
        ),
        "CCS 2020 workshop",
        "encrypted aggregation",
        "",
        "defenses/fastsecagg",
    ),
    Paper(
        "lightsecagg",
        "LightSecAgg",
        "LightSecAgg: Rethinking Secure Aggregation in Federated Learning",
        "arXiv 2021",
        "encrypted aggregation",
        "",
        "defenses/lightsecagg",
    ),
    Paper(
        "he",
        "Homomorphic encryption",
        "Privacy-Preserving Deep Learning via Additively Homomorphic Encryption",
        "IEEE TIFS 2018 (ATIS 2017)",
        "encrypted aggregation",
        "",
        "defenses/he",
    ),
    Paper(
        "huang2021",
        "Evaluating attacks and defenses",
        "Evaluating Gradient Inversion Attacks and Defenses in Federated Learning",
        "NeurIPS 2021",
        "evaluation",
        "",
        notebook="evaluation/attacks_vs_defenses",
    ),
    Paper(
        "aggregation_leakage",
        "What encrypted aggregation still leaks",
        "What Encrypted Aggregation Still Leaks: Attacks on the Sum, the "
        "Threshold and a Malicious Server",
        "this book",
        "evaluation",
        "the sum; a modified model; colluders",
        notebook="evaluation/aggregation_leakage",
        seed=False,
    ),
    Paper(
        "flower",
        "Attacking a Flower deployment",
        "Gradient inversion through Flower's FedAvg, with and without SecAgg+",
        "this book",
        "evaluation",
        "the clients' learning rate (sent by the server)",
        notebook="evaluation/flower",
        seed=False,
    ),
    Paper(
        "dask_sweep",
        "Sweeping a notebook with Dask",
        "Parameter sweeps of a page on a Dask cluster",
        "this book",
        "evaluation",
        "",
        notebook="evaluation/dask_sweep",
        seed=False,
    ),
)
