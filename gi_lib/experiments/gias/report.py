"""What the GIAS page reports: prose, rows and the paper's claims."""

from __future__ import annotations

from gi_lib.experiments.common import PAPER_NUMBERS_UNREAD, mean, threads_text
from gi_lib.experiments.gias import params as page
from gi_lib.experiments.gias.experiment import GIASResult, Setting
from gi_lib.results import Claim, ResultRow, paired_claim

CEILING = "ceiling"
"""The projection ceiling's name where a claim sets it against an arm."""


def summary_text(result: GIASResult) -> str:
    """The run's numbers in a few sentences."""
    p = result.params
    main, hard, stress = (
        result.settings[k] for k in (page.MAIN, page.HARD, page.STRESS)
    )
    gen = result.generator
    trained = (
        "loaded from the cache"
        if gen.cached
        else f"trained in {gen.train_seconds:.0f} s"
    )
    conf = result.confidence

    def fmt(setting: Setting, arm: str) -> str:
        return f"{arm} {mean(setting.psnr(arm)):.1f} dB"

    return (
        f"The generator (DCGAN, ngf {p.ngf}, {p.gan_epochs} epochs over up to "
        f"{p.gan_images} training images) was {trained}. A classifier trained "
        f"on {p.classifier_images} "
        f"images (test accuracy {result.classifier_accuracy:.2f}) gives its "
        f"samples a mean top-class probability of {conf.mean_confidence:.2f} "
        f"({conf.share_confident:.0%} above {conf.threshold}; on real test "
        f"images {result.real_confidence.mean_confidence:.2f} and "
        f"{result.real_confidence.share_confident:.0%}). On "
        f"{p.num_trials} batches of {p.batch_size}, at {result.budget} gradient "
        f"evaluations each: {fmt(main, page.GIX)}, {fmt(main, page.GIZ)}, "
        f"{fmt(main, page.GIAS)} ({fmt(main, page.GIZ_PHASE)}); the projection "
        f"ceiling is {mean(main.ceiling):.1f} dB. With {p.pruning:.0%} of the "
        f"gradient pruned: {fmt(hard, page.GIX)}, {fmt(hard, page.GIAS)}. With the "
        "generator that never saw the attacked classes: "
        f"{fmt(stress, page.GIZ_PHASE)}, {fmt(stress, page.GIAS)}, ceiling "
        f"{mean(stress.ceiling):.1f} dB "
        f"({threads_text(p.num_threads)}, {result.seconds:.0f} s)."
    )


def rows(result: GIASResult) -> list[ResultRow]:
    """Our numbers; the paper's PSNR values could not be read, so none is quoted."""
    out = []
    for key, setting in result.settings.items():
        for arm in setting.arms:
            out.append(
                ResultRow.against(
                    f"{key}: {arm}",
                    "psnr",
                    mean(setting.psnr(arm)),
                    None,
                    f"mean over {len(setting.psnr(arm))} batches; "
                    + PAPER_NUMBERS_UNREAD,
                )
            )
        out.append(
            ResultRow.against(
                f"{key}: projection ceiling",
                "psnr",
                mean(setting.ceiling),
                None,
                "the generator's code fitted to the images directly (ours)",
            )
        )
    out.append(
        ResultRow.against(
            "generator samples: classifier confidence",
            "success_rate",
            result.confidence.share_confident,
            None,
            f"share of {result.params.num_samples} samples with top-class probability "
            f">= {result.confidence.threshold} (ours, a check of the generator)",
        )
    )
    out.append(
        ResultRow.against(
            "real test images: classifier confidence",
            "success_rate",
            result.real_confidence.share_confident,
            None,
            "the same share on real test images, for comparison (ours)",
        )
    )
    return out


def claims(result: GIASResult) -> list[Claim]:
    """The paper's claims, judged on the paired batches of this run."""
    main, hard, stress = (
        result.settings[k] for k in (page.MAIN, page.HARD, page.STRESS)
    )
    fig2 = (
        f"{page.PAPER}, Fig. 2 caption (search spaces x, z, w, z/w: GI-z/w, i.e. "
        "GIAS, best), as read in the arXiv source"
    )
    fig1 = (
        f"{page.PAPER}, Fig. 1 (the repository's main_result.png: latent search alone "
        "gives natural images, pixel search noise; qualitative)"
    )
    fig3 = (
        f"{page.PAPER}, Fig. 3 caption (GI-x replaced by GIAS), as read in the "
        "arXiv source"
    )
    motivation = (
        f"{page.PAPER}, the method's motivation (a latent search is confined to the "
        "generator's range; adapting its weights lifts that limit); the "
        "projection-ceiling test is ours"
    )

    def versus(
        claim: str, source: str, setting: Setting, first: str, second: str
    ) -> Claim:
        """``first`` beats ``second`` in ``setting``, paired by batch; either
        may be an arm or the projection ceiling."""

        def scores(name: str) -> list[float]:
            return setting.ceiling if name == CEILING else setting.psnr(name)

        return paired_claim(
            claim, source, scores(first), scores(second), names=(first, second)
        )

    stress_test = "stress test of this book (generator trained on other classes)"
    out = [
        versus(
            "GIAS beats latent search alone (GI-z) at the same number of steps.",
            fig2,
            main,
            page.GIAS,
            page.GIZ,
        ),
        versus(
            "When the generator fits the data, searching its code (GI-z) beats "
            "searching pixels (GI-x).",
            fig1,
            main,
            page.GIZ,
            page.GIX,
        ),
        versus(
            "Replacing pixel search with GIAS improves the reconstruction where "
            "pixel search struggles (here: a pruned gradient).",
            fig3,
            hard,
            page.GIAS,
            page.GIX,
        ),
        versus(
            "A latent-only search stays under what the generator can represent "
            "(GI-z below the projection ceiling).",
            motivation,
            main,
            CEILING,
            page.GIZ,
        ),
        versus(
            "Adapting the generator's weights lets GIAS pass that ceiling.",
            motivation,
            main,
            page.GIAS,
            CEILING,
        ),
        versus(
            "Ours, not the paper's: with a generator that never saw the attacked "
            "classes, GIAS's parameter search still improves on its latent search.",
            stress_test,
            stress,
            page.GIAS,
            page.GIZ_PHASE,
        ),
        versus(
            "Ours, not the paper's: with that generator, GIAS passes the "
            "generator's own projection ceiling (what its codes alone can make "
            "of the attacked images).",
            stress_test,
            stress,
            page.GIAS,
            CEILING,
        ),
    ]
    return out
