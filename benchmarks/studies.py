"""Every `selfsup study` at the small budget, one after another, and what each found.

Each study runs as `selfsup study NAME --budget small --out OUT/NAME` in its own process (a
finished one is read back: studies resume), then one line per study says whether its finding
reproduced, with its evidence and the minutes it took. The findings go to BENCHMARKS.md.

    python benchmarks/studies.py --out runs/studies                 # about 2 hours on 2 cores
    python benchmarks/studies.py --only randbit --out runs/studies
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from selfsup.experiments import STUDIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/studies", help="one folder per study inside")
    parser.add_argument("--only", nargs="*", default=sorted(STUDIES), choices=sorted(STUDIES))
    parser.add_argument("--budget", default="small", choices=["small", "paper"])
    args, extra = parser.parse_known_args()  # anything else goes to every study
    rows = []
    for name in args.only:
        folder = Path(args.out) / name
        started = time.perf_counter()
        command = [sys.executable, "-m", "selfsup", "study", name, "--budget", args.budget]
        done = subprocess.run([*command, "--out", str(folder), *extra])
        minutes = (time.perf_counter() - started) / 60
        if done.returncode:
            rows.append({"study": name, "failed": done.returncode, "minutes": round(minutes, 1)})
            continue
        finding = json.loads((folder / "study.json").read_text())["finding"]
        rows.append(
            {
                "study": name,
                "reproduced": finding["reproduced"],
                "evidence": finding["evidence"],
                "minutes": round(minutes, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "studies.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        verdict = "FAILED" if "failed" in row else "reproduced"
        if not row.get("reproduced", True):
            verdict = "not reproduced"
        evidence = row.get("evidence", "")
        print(f"{row['study']:<18} {verdict:<15} {row['minutes']:>6.1f} min  {evidence}")


if __name__ == "__main__":
    main()
