"""bench/timing.py: shared by bench/run.sh and bench/net.sh (imported by their report scripts): the
table of the engines' times from hyperfine's JSON export, and berth's targets against the others."""
import json


def ms(seconds):
    return seconds * 1000


def load(path):
    """The results of a hyperfine --export-json file, by command name."""
    return {r["command"]: r for r in json.load(open(path))["results"]}


def table(results):
    """Prints each engine's median, mean, stddev, min and max (ms) and berth/engine (medians)."""
    med = {t: r["median"] for t, r in results.items()}
    print(f"{'engine':<12}{'median':>9}{'mean':>9}{'stddev':>9}{'min':>9}{'max':>9}   (ms){'berth/engine':>16}")
    for t, r in results.items():
        ratio = f"{med['berth'] / med[t]:>16.2f}" if t != "berth" else ""
        print(f"{t:<12}{ms(r['median']):>9.1f}{ms(r['mean']):>9.1f}{ms(r['stddev'] or 0):>9.1f}"
              f"{ms(r['min']):>9.1f}{ms(r['max']):>9.1f}       {ratio}")


def targets(results, limits):
    """Prints, for each (engine, limit), whether berth's median is at most limit x the engine's."""
    med = {t: r["median"] for t, r in results.items()}
    print("targets (berth's median against each):")
    for other, limit in limits:
        if other not in med:
            print(f"  berth <= {limit} x {other}: not measured")
            continue
        goal = limit * med[other]
        r = med["berth"] / med[other]
        verdict = "met" if med["berth"] <= goal else f"NOT met: {ms(med['berth'] - goal):.1f} ms over"
        print(f"  berth <= {limit} x {other} ({ms(goal):.1f} ms): {r:.2f} x, {verdict}")
