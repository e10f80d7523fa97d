"""Run every ```python block of one README section, in order, in one namespace.

Usage: python .ci/readme_section.py README.md "## LangChain"
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def main(readme: str, title: str) -> None:
    text = Path(readme).read_text(encoding="utf-8")
    if title not in text:
        raise SystemExit(f"no section {title!r} in {readme}")
    section = text.split(title, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    if not blocks:
        raise SystemExit(f"section {title!r} has no python block")
    scope: dict[str, object] = {"__name__": "__readme__"}
    for code in blocks:
        exec(compile(code, f"{readme} ({title})", "exec"), scope)
    print(f"{title}: {len(blocks)} blocks ran")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
