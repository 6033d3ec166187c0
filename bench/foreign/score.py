#!/usr/bin/env python3
"""Score alert-router on storms written by generate.py.

python bench/foreign/score.py DIR [--jobs 2] [--show-failures K] [--json OUT]

Drives the engine only through `alert-router replay` (subprocess).
"""

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from storm_score import Result, score_storm

# Replays run in parallel, two at most: each is a whole engine process.
MAX_JOBS = 2
SUMMARY_RATIOS = [
    "precision",
    "recall",
    "recall_incl_reattributed",
    "pages_per_real_incident",
    "symptoms_attached",
    "ttp_median_min",
    "ttp_p90_min",
]


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile, interpolated between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(numerator: float, denominator: float) -> float | None:
    return (numerator / denominator) if denominator else None


def three_places(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def count(items: list[Any], predicate: Callable[[Any], bool]) -> int:
    return sum(1 for item in items if predicate(item))


def summarize(results: list[Result]) -> dict[str, Any]:
    """Precision, recall, pages per incident, attached symptoms and time to page over all storms."""
    pages = [page for result in results for page in result["pages"]]
    faults = [fault for result in results for fault in result["faults"]]
    must_page = [fault for fault in faults if fault["must_page"]]
    time_to_page = [fault["ttp_min"] for fault in must_page if fault["ttp_min"] is not None]
    attached = [
        sum(result["attach"][0] for result in results),
        sum(result["attach"][1] for result in results),
    ]
    return {
        "storms": len(results),
        "replay_errors": count(results, lambda result: bool(result.get("error"))),
        "storms_with_stderr_problems": count(results, lambda result: bool(result["stderr_problems"])),
        "pages": len(pages),
        "must_page_faults": len(must_page),
        "must_not_page_faults": len(faults) - len(must_page),
        "precision": ratio(count(pages, lambda page: page["verdict"] == "correct"), len(pages)),
        "recall": ratio(count(must_page, lambda fault: fault["paged"]), len(must_page)),
        "recall_incl_reattributed": ratio(
            count(must_page, lambda fault: fault["paged"] or fault.get("reattributed_later")), len(must_page)
        ),
        "pages_per_real_incident": ratio(len(pages), len(must_page)),
        "healed_or_noise_paged": count(pages, lambda page: page["verdict"] == "healed_or_noise"),
        "wrong_pages": count(pages, lambda page: page["verdict"] == "wrong"),
        "symptoms_attached": ratio(attached[0], attached[1]),
        "symptoms_attached_counts": attached,
        "ttp_median_min": statistics.median(time_to_page) if time_to_page else None,
        "ttp_p90_min": percentile(time_to_page, 0.9),
    }


def per_kind(results: list[Result]) -> dict[str, dict[str, Any]]:
    """The summary's figures per fault kind, with the pages attributed to faults of the kind."""
    faults = [fault for result in results for fault in result["faults"]]
    kind_of = {(result["id"], fault["id"]): fault["kind"] for result in results for fault in result["faults"]}
    rows = {}
    for kind in sorted({fault["kind"] for fault in faults}):
        of_kind = [fault for fault in faults if fault["kind"] == kind]
        pages = [
            page
            for result in results
            for page in result["pages"]
            if page.get("fault") and kind_of.get((result["id"], page["fault"])) == kind
        ]
        time_to_page = [fault["ttp_min"] for fault in of_kind if fault["ttp_min"] is not None]
        paged = [fault for fault in of_kind if fault["paged"] and fault["must_page"]]
        must_page = of_kind[0]["must_page"]
        rows[kind] = {
            "faults": len(of_kind),
            "must_page": must_page,
            "recall": ratio(count(of_kind, lambda fault: fault["paged"]), len(of_kind))
            if must_page
            else None,
            "ttp_median_min": statistics.median(time_to_page) if time_to_page else None,
            "symptoms_attached": ratio(
                sum(fault["attached"] for fault in paged), sum(fault["symptoms"] for fault in paged)
            ),
            "correct_pages": count(pages, lambda page: page["verdict"] == "correct"),
            "wrong_pages": count(pages, lambda page: page["verdict"] == "wrong"),
            "healed_noise_pages": count(pages, lambda page: page["verdict"] == "healed_or_noise"),
        }
    return rows


def failure_classes(results: list[Result]) -> dict[str, list[str]]:
    """Storm ids per failure: each page that is not correct, by its class, and each missed fault."""
    classes: dict[str, list[str]] = {}
    for result in results:
        for page in result["pages"]:
            if page["verdict"] != "correct":
                classes.setdefault(page.get("class", page["verdict"]), []).append(result["id"])
        for missed in result["missed"]:
            classes.setdefault(f"missed {missed['kind']}", []).append(result["id"])
    return classes


def print_report(results: list[Result], summary: dict[str, Any], classes: dict[str, list[str]]) -> None:
    """The summary, then per fault kind, per kind of topology dump, and the failure classes."""
    print(
        f"storms {summary['storms']}  (replay errors {summary['replay_errors']}, "
        f"storms with stderr problems {summary['storms_with_stderr_problems']})"
    )
    print(f"{'pages':<28} {summary['pages']}")
    must_page, must_not_page = summary["must_page_faults"], summary["must_not_page_faults"]
    print(f"{'faults':<28} {must_page} must-page, {must_not_page} must-not-page")
    for key in SUMMARY_RATIOS:
        print(f"{key:<28} {three_places(summary[key])}")
    print(f"{'healed/noise paged':<28} {summary['healed_or_noise_paged']}")
    print(f"{'other wrong pages':<28} {summary['wrong_pages']}")
    print(
        f"\n{'kind':<22} {'faults':>6} {'recall':>7} {'ttp_med':>7} {'attached':>9} {'correct':>8} "
        f"{'wrong/near':>9} {'healed':>9}"
    )
    for kind, row in summary["per_kind"].items():
        print(
            f"{kind:<22} {row['faults']:6d} {three_places(row['recall']):>7} "
            f"{three_places(row['ttp_median_min']):>7} {three_places(row['symptoms_attached']):>9} "
            f"{row['correct_pages']:8d} {row['wrong_pages']:9d} {row['healed_noise_pages']:9d}"
        )
    print(f"\n{'topology / labels':<50} {'storms':>6} {'precision':>9} {'recall':>9} {'attached':>9}")
    for topology in sorted({result["topology"] for result in results}):
        of_topology = [result for result in results if result["topology"] == topology]
        pages = [page for result in of_topology for page in result["pages"]]
        must_page = [fault for result in of_topology for fault in result["faults"] if fault["must_page"]]
        precision = ratio(count(pages, lambda page: page["verdict"] == "correct"), len(pages))
        recall = ratio(count(must_page, lambda fault: fault["paged"]), len(must_page))
        attached = ratio(
            sum(result["attach"][0] for result in of_topology),
            sum(result["attach"][1] for result in of_topology),
        )
        print(
            f"{topology:<50} {len(of_topology):6d} {three_places(precision):>9} {three_places(recall):>9} "
            f"{three_places(attached):>9}"
        )
    print("\nfailure classes (count, storms):")
    for name, ids in sorted(classes.items(), key=lambda item: -len(item[1])):
        storms = sorted(set(ids))
        more = " ..." if len(storms) > 6 else ""
        print(f"  {len(ids):4d}  {name:<55} {' '.join(storms[:6])}{more}")


def print_failures(results: list[Result], limit: int) -> None:
    """The first `limit` storms with a wrong page, a missed fault or a replay error, in detail."""
    bad = [
        result
        for result in results
        if result["missed"]
        or any(page["verdict"] != "correct" for page in result["pages"])
        or result.get("error")
    ]
    print(f"\n{len(bad)} storms with failures; showing {min(limit, len(bad))}")
    for result in bad[:limit]:
        print(f"\n== {result['id']}  traps={','.join(result['traps'])}")
        for fault in result["faults"]:
            print(
                f"   fault {fault['id']:<4} {fault['kind']:<18} must_page={fault['must_page']!s:<5} "
                f"paged={fault['paged']!s:<5} root={fault['root']} "
                f"({fault['delivered_alerts']} alerts delivered, {fault['symptoms']} symptoms, "
                f"{fault['attached']} attached)"
            )
        for page in result["pages"]:
            if page["verdict"] != "correct":
                print(
                    f"   WRONG PAGE [{page.get('class', page['verdict'])}] {page['at']} "
                    f"root={page['entity']} alert={page['alertname']}\n        reason: {page['reason'][:220]}"
                )
        for missed in result["missed"]:
            print(
                f"   MISSED {missed['kind']} {missed['root']} "
                f"({missed['delivered_alerts']} alerts delivered, first {missed['first_alert']})"
            )
        if result.get("error"):
            print("   ERROR", result["error"], result["stderr_problems"][:3])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--show-failures", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    storm_dirs = sorted(path for path in Path(args.dir).iterdir() if (path / "truth.json").exists())
    with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, MAX_JOBS))) as pool:
        results = list(pool.map(score_storm, storm_dirs))
    summary = summarize(results)
    summary["per_kind"] = per_kind(results)
    classes = failure_classes(results)
    print_report(results, summary, classes)
    summary["failure_classes"] = {name: sorted(set(ids)) for name, ids in classes.items()}
    if args.show_failures:
        print_failures(results, args.show_failures)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"summary": summary, "storms": results}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
