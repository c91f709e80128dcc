#!/usr/bin/env python3
"""Plots the resident memory samples `load --csv` wrote: one line per target.

    plot.py rss.csv out.png "title"
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

source, out, title = sys.argv[1], sys.argv[2], sys.argv[3]
series = {}
with open(source, newline="") as f:
    for row in csv.DictReader(f):
        series.setdefault(row["target"], []).append((float(row["seconds"]), float(row["rss_mib"])))
if not series:
    sys.exit(f"error: {source} holds no samples")
fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
for name, points in series.items():
    ax.plot([t for t, _ in points], [m for _, m in points], label=name, linewidth=1.5)
ax.set_xlabel("seconds under load")
ax.set_ylabel("resident memory, MiB")
ax.set_ylim(bottom=0)
ax.set_title(title, fontsize=10)
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(out)
print(f"plot written to {out}")
