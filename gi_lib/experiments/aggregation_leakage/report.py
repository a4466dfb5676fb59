"""The aggregation-leakage page's closing table, its prose numbers, its rows and
the claims it checks.
"""

from __future__ import annotations

from gi_lib.experiments.aggregation_leakage import params as page
from gi_lib.experiments.aggregation_leakage.params import LeakageRun, _mean
from gi_lib.results import Claim, ResultRow, bound_claim, paired_claim


def leak_table(result: LeakageRun):  # noqa: ANN201 - pandas imported lazily
    """The page's closing table: attack, who misbehaves, what it recovers,
    against which protocols, and this run's numbers."""
    import pandas as pd

    c, inc, he = result.collusion, result.inconsistency, result.he
    m = {k: _mean(v) for k, v in result.masked.items()}
    iso = {k: _mean(v) for k, v in result.isolation.items()}
    labels_exact = min(v["exact"] for v in result.labels.values())
    big_cpa = max(result.cpa)
    big_rtf = max(result.rtf)
    rows = [
        (
            "one client's masked upload",
            "nobody (honest-but-curious server)",
            "nothing: noise",
            "SecAgg, SecAgg+, LightSecAgg, FastSecAgg, HE",
            f"IG {m['psnr_masked']:.1f} dB vs plaintext {m['psnr_plain']:.1f} dB "
            f"(unrelated {m['psnr_unrelated']:.1f} dB; means of "
            f"{len(result.masked['psnr_plain'])} trials)",
        ),
        (
            "label counts from the sum",
            "nobody",
            "the round's label histogram",
            "all (they reveal the sum)",
            f"exact in {labels_exact:.0%} of rounds at the worst N",
        ),
        (
            "Inverting Gradients on the sum",
            "nobody",
            "a blur of N images",
            "all",
            ", ".join(
                f"N={n}: {_mean(v):.1f} dB" for n, v in sorted(result.ig.items())
            ),
        ),
        (
            "Cocktail Party (first FC layer)",
            "nobody (needs an FC first layer)",
            "individual images, up to sign and scale",
            "all",
            f"{result.cpa[big_cpa]['cpa_fraction']:.0%} of {big_cpa} (FastICA "
            f"{result.cpa[big_cpa]['fastica_fraction']:.0%})",
        ),
        (
            "Robbing the Fed (imprint layer)",
            "the server (sends a modified model)",
            "every sample alone in its bin, exactly",
            "all",
            f"{result.rtf[big_rtf]['recovered']:.0f} of {big_rtf} "
            f"(singletons {result.rtf[big_rtf]['singletons']:.0f}); through SecAgg "
            f"{result.rtf_secagg['recovered']:.0f} of {result.rtf_secagg['clients']:.0f}",  # noqa: E501
        ),
        (
            "model inconsistency",
            "the server (different models per client)",
            "the target's update, exactly",
            "all (SecAgg binds users, not models)",
            f"{inc['mismatches']:.0f} mismatches; IG {iso['ig_isolated']:.1f} dB vs "
            f"{iso['ig_honest_target']:.1f} dB on the honest sum; FC-2 exact "
            f"{iso['analytic_isolated']:.1f} dB vs {iso['analytic_honest']:.1f} dB",
        ),
        (
            "replayed unmasking",
            f"the server + t = {c['secagg_threshold']:.0f} clients",
            "one client's update, exactly",
            "SecAgg (t), LightSecAgg (U)",
            f"SecAgg t: {'yes' if c['secagg_t_recovers'] else 'no'}, t-1: "
            f"{'yes' if c['secagg_t_minus_1_recovers'] else 'no'}; LightSecAgg U: "
            f"{'yes' if c['light_U_recovers'] else 'no'}, U-1: "
            f"{'yes' if c['light_U_minus_1_recovers'] else 'no'}",
        ),
        (
            "differencing two rounds",
            "the server (picks who takes part)",
            "the left-out client's update, exactly",
            "all",
            f"{c['difference_secagg_mismatches']:.0f} / "
            f"{c['difference_lightsecagg_mismatches']:.0f} mismatches (SecAgg / LightSecAgg)",  # noqa: E501
        ),
        (
            "HE: participant's two decryptions",
            "a participant",
            "another participant's update, exactly",
            "HE (shared key)",
            f"{he['mismatches']:.0f} mismatches; IG {he['psnr_participant']:.1f} dB",
        ),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "attack",
            "who must misbehave",
            "what it recovers",
            "works against",
            "this run",
        ],
    )


def summary_text(result: LeakageRun) -> str:
    """The numbers the page's prose quotes (means over the trials)."""
    m = {k: _mean(v) for k, v in result.masked.items()}
    iso = {k: _mean(v) for k, v in result.isolation.items()}
    inc = result.inconsistency
    ns = sorted(result.ig)
    trials = len(result.masked["psnr_plain"])
    return (
        f"Over {trials} trials (mean PSNR), Inverting Gradients scores "
        f"{m['psnr_plain']:.1f} dB on client 0's plaintext update and "
        f"{m['psnr_masked']:.1f} dB on its masked upload; an unrelated image "
        f"scores {m['psnr_unrelated']:.1f} dB. On the aggregate of N one-image "
        f"clients it scores {_mean(result.ig[ns[0]]):.1f} dB at N = {ns[0]} and "
        f"{_mean(result.ig[ns[-1]]):.1f} dB at N = {ns[-1]}. Model inconsistency "
        f"isolates the target's update ({inc['mismatches']:.0f} mismatched "
        f"integers on the ConvNet, {inc['fc_mismatches']:.0f} on FC-2's first "
        f"layer, over all trials); Inverting Gradients then scores "
        f"{iso['ig_isolated']:.1f} dB, against {iso['ig_honest_target']:.1f} dB "
        "for the same image from the honest sum, and on the FC-2 network the "
        "target's image is read off the isolated first-layer update at "
        f"{iso['analytic_isolated']:.1f} dB, against "
        f"{iso['analytic_honest']:.1f} dB for the same formula on the honest sum "
        "(a weighted mean of the clients' images)."
    )


def rows(result: LeakageRun) -> list[ResultRow]:
    """This page's numbers (no paper prints them in this setting)."""
    out = [
        ResultRow.against(
            "masked upload, IG", "psnr", _mean(result.masked["psnr_masked"]), None
        ),
        ResultRow.against(
            "plaintext update, IG", "psnr", _mean(result.masked["psnr_plain"]), None
        ),
    ]
    out += [
        ResultRow.against(f"IG on the sum of N={n}", "psnr", _mean(v), None)
        for n, v in sorted(result.ig.items())
    ]
    out += [
        ResultRow.against(
            f"label counts, N={n}", "label_accuracy", v["label_accuracy"], None
        )
        for n, v in sorted(result.labels.items())
    ]
    for m, v in sorted(result.cpa.items()):
        out.append(
            ResultRow.against(
                f"Cocktail Party, {m} samples", "success_rate", v["cpa_fraction"], None
            )
        )
        out.append(
            ResultRow.against(
                f"FastICA, {m} samples", "success_rate", v["fastica_fraction"], None
            )
        )
    for m, v in sorted(result.rtf.items()):
        out.append(
            ResultRow.against(
                f"Robbing the Fed, {m} samples",
                "success_rate",
                v["fraction"],
                None,
                note=f"expected singleton fraction {v['expected_singletons'] / m:.2f}",
            )
        )
    out.append(
        ResultRow.against(
            "model inconsistency, IG on the isolated update",
            "psnr",
            _mean(result.isolation["ig_isolated"]),
            None,
        )
    )
    out.append(
        ResultRow.against(
            "model inconsistency, FC-2 first layer read exactly",
            "psnr",
            _mean(result.isolation["analytic_isolated"]),
            None,
        )
    )
    out.append(
        ResultRow.against(
            "HE participant's difference, IG",
            "psnr",
            result.he["psnr_participant"],
            None,
        )
    )
    return out


def _exact(claim: str, source: str, mismatches: float) -> Claim:
    """A claim of exact recovery: no mismatched integers (a count below 0.5)."""
    return bound_claim(claim, source, [mismatches], below=0.5, what="mismatches")


def claims(result: LeakageRun) -> list[Claim]:
    """The claims this page checks, each on this run's numbers."""
    m, c, inc, he = result.masked, result.collusion, result.inconsistency, result.he
    iso = result.isolation
    ns = sorted(result.ig)
    out = [
        paired_claim(
            "The same client's plaintext update is inverted better than its "
            "masked upload (Inverting Gradients, same image and seed per trial).",
            page.SRC_MASK,
            m["psnr_plain"],
            m["psnr_masked"],
            names=("plaintext", "masked"),
        ),
        paired_claim(
            "A masked upload, inverted, is no better than an unrelated image "
            "(within 2 dB: the unrelated image's PSNR plus 2 dB beats the "
            "masked upload's).",
            page.SRC_MASK,
            [u + 2.0 for u in m["psnr_unrelated"]],
            m["psnr_masked"],
            names=("unrelated + 2 dB", "masked"),
        ),
        bound_claim(
            "The round's label counts are read exactly from the aggregated "
            "last-layer gradient of cross-entropy FedSGD, at every number of "
            "clients tried.",
            page.SRC_LABELS,
            [min(v["exact"] for v in result.labels.values())],
            above=0.99,
            what="fraction of exact rounds at the worst N",
        ),
        paired_claim(
            "Inverting Gradients on the sum loses quality as clients are added "
            f"(PSNR at N = {ns[0]} against N = {ns[-1]}, paired by trial).",
            page.SRC_IG,
            result.ig[ns[0]],
            result.ig[ns[-1]],
            names=(f"N = {ns[0]}", f"N = {ns[-1]}"),
        ),
        bound_claim(
            "Blind source separation of the first FC layer's summed gradient "
            f"recovers individual images from a sum of {max(result.cpa)} samples "
            f"(recovered: PSNR >= {result.params.recovered_psnr:g} dB up to sign "
            "and scale); at least a quarter of them.",
            page.SRC_CPA,
            [result.cpa[max(result.cpa)]["cpa_fraction"]],
            above=0.25,
            what="fraction recovered",
        ),
        bound_claim(
            "Robbing the Fed recovers exactly every sample alone in its bin, "
            "from the sum (recovered minus singleton bins, worst size).",
            page.SRC_RTF,
            [min(v["recovered"] - v["singletons"] for v in result.rtf.values())],
            above=-0.5,
            what="recovered minus singletons",
        ),
        bound_claim(
            "Through SecAgg, the imprint recovery still finds single images "
            "(images recovered from the decoded secure sum).",
            page.SRC_RTF,
            [result.rtf_secagg["recovered"]],
            above=0.5,
            what="images recovered",
        ),
        _exact(
            "Model inconsistency makes the secure sum equal the target's update "
            "on every parameter the others' dead model silences (mismatched "
            "integers, ConvNet and FC-2's first layer, every trial).",
            page.SRC_INCONSISTENCY,
            inc["mismatches"] + inc["fc_mismatches"],
        ),
        paired_claim(
            "On a network whose first layer is fully connected with a bias "
            "(FC-2), the target's image is read off the isolated update "
            "exactly (x = dW_r / db_r), far better than the same formula on the "
            "honest sum (paired by trial).",
            page.SRC_INCONSISTENCY,
            iso["analytic_isolated"],
            iso["analytic_honest"],
            names=("isolated", "honest sum"),
        ),
        paired_claim(
            "The isolated update is inverted (Inverting Gradients, ConvNet) "
            "better than the same image from the honest sum (paired by trial).",
            page.SRC_INCONSISTENCY,
            iso["ig_isolated"],
            iso["ig_honest_target"],
            names=("isolated", "honest sum"),
        ),
        bound_claim(
            "The server with t colluding clients unmasks one SecAgg client "
            "exactly; with t - 1 it cannot (1 = exact recovery, 0 = none; "
            "t-recovery minus (t-1)-recovery).",
            page.SRC_SECAGG,
            [c.get("secagg_t_exact", 0.0) - c["secagg_t_minus_1_recovers"]],
            above=0.5,
            what="t exact minus t-1 recovers",
        ),
        bound_claim(
            "LightSecAgg: T colluders learn nothing of a user's mask, U recover "
            "the user's update exactly, U - 1 cannot (pieces leaked at T, then "
            "exactness at U minus recovery at U-1).",
            page.SRC_LIGHT,
            [
                c.get("light_U_exact", 0.0)
                - c["light_U_minus_1_recovers"]
                - result.light_pieces[int(c["light_T"])]
            ],
            above=0.5,
            what="score",
        ),
        _exact(
            "Two rounds whose client sets differ by one client give that "
            "client's update exactly (mismatched integers, SecAgg and LightSecAgg).",
            page.SRC_LAM,
            c["difference_secagg_mismatches"] + c["difference_lightsecagg_mismatches"],
        ),
        _exact(
            "A participant's two decryptions around another's upload hold that "
            "upload exactly, while the server's view holds no plaintext "
            "(mismatches plus plaintext found).",
            page.SRC_HE,
            he["mismatches"] + he["server_sees_plaintext"],
        ),
    ]
    return out
