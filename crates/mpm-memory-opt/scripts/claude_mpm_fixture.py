#!/usr/bin/env python3
"""Writes tests/fixtures/claude_mpm_cases.jsonl: random memory files with odd layouts, and what
claude-mpm's own MemoryOptimizer (v4.0.29) makes of them, for the `claude-mpm` profile test.

The optimizer is not part of this repository: pass the path of
`src/claude_mpm/services/memory/optimizer.py` from a claude-mpm v4.0.29 checkout. Its three
imports from claude_mpm.core are replaced by small stand-ins, and its clock is fixed at
2026-01-01 00:00:00 so the output is deterministic. Run from the crate directory:

    python3 scripts/claude_mpm_fixture.py /path/to/claude-mpm/src/claude_mpm/services/memory/optimizer.py
"""
import datetime as _dt
import importlib.util
import json
import logging
import random
import sys
import tempfile
import types
from pathlib import Path

logging.disable(logging.CRITICAL)

# Stand-ins for the optimizer's imports.
core = types.ModuleType("claude_mpm.core")
config = types.ModuleType("claude_mpm.core.config")
config.Config = type("Config", (), {})
mixins = types.ModuleType("claude_mpm.core.mixins")


class LoggerMixin:
    def __init__(self):
        self.logger = logging.getLogger("optimizer")


mixins.LoggerMixin = LoggerMixin
paths = types.ModuleType("claude_mpm.core.unified_paths")
paths.get_path_manager = lambda: types.SimpleNamespace(get_project_root=lambda: None)
for name, mod in {"claude_mpm": types.ModuleType("claude_mpm"), "claude_mpm.core": core,
                  "claude_mpm.core.config": config, "claude_mpm.core.mixins": mixins,
                  "claude_mpm.core.unified_paths": paths}.items():
    sys.modules[name] = mod

spec = importlib.util.spec_from_file_location("optimizer", sys.argv[1])
optimizer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(optimizer)


class FixedClock(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 1, 1, 0, 0, 0)


optimizer.datetime = FixedClock

rng = random.Random(5)
PIECES = ["## Recent Learnings", "## Project Architecture", "## Recent Learnings (v2)", "## (untitled)", "## ",
          "## header", "## Metadata", "## Other stuff", "## Project Context", "## Implementation Guidelines",
          "<!-- Last Updated: 2025-08-20 10:00:00 | Auto-updated by: engineer -->", "<!-- c -->", "", "  ",
          "text line", "# Title", "Last Updated: x", "- use pathlib over os.path", "- Use pathlib over os.path always",
          "-  use  pathlib over os.path", "  - nested item", "- a - b - c", "- tests should use fixtures",
          "- Tests should use pytest fixtures", "- Note: the CLI is main.py", "- You must always register services",
          "- must always register services!", "\t- tab bullet", "- İstanbul ÇAĞ", "- ıstanbul çağ", "- ŒUVRE café",
          "- \u00a0nbsp item", "- \u2028sep", "-no space", "- x- x- x",
          "- critical important essential required must always never should " * 2, "- Σίσυφος ΣΊΣΥΦΟΣ",
          "* star bullet", "- trailing space   ", "- timeout, retry", "- retry timeout"]
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()


def gen():
    lines = [rng.choice(PIECES) for _ in range(rng.randint(0, 40))]
    for _ in range(rng.randint(0, 15)):
        lines.insert(rng.randint(0, len(lines)), "- " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))))
    sep = rng.choice(["\n", "\n", "\r\n", "\r"])
    text = sep.join(lines) + (sep if rng.random() < 0.7 else "")
    return ("\ufeff" + text) if rng.random() < 0.1 else text


FIELDS = ["original_size", "optimized_size", "size_reduction", "size_reduction_percent", "duplicates_removed",
          "items_consolidated", "items_reordered", "sections_optimized"]
with open("tests/fixtures/claude_mpm_cases.jsonl", "w", encoding="utf-8") as out:
    for _ in range(200):
        text = gen()
        with tempfile.TemporaryDirectory() as d:
            mem = Path(d) / ".claude-mpm" / "memories"
            mem.mkdir(parents=True)
            f = mem / "x_agent.md"
            f.write_bytes(text.encode("utf-8"))
            result = optimizer.MemoryOptimizer(working_directory=Path(d)).optimize_agent_memory("x")
            assert result["success"], result
            case = {"input": text, "output": f.read_bytes().decode("utf-8")}
            case.update({k: result[k] for k in FIELDS})
            out.write(json.dumps(case, ensure_ascii=False) + "\n")
print("wrote 200 cases")
