"""Write netsharp/parser_tables.py, the LALR tables lark builds from grammar/netsharp.lark, so
that a start loads them instead of building them. Run it after changing the grammar or
upgrading lark (tests/test_parse.py fails until then; netsharp still works, building the
tables at every start).

    python scripts/parser_tables.py
"""

from __future__ import annotations

from pathlib import Path

from netsharp.parse import grammar_path, parser_tables_source

TABLES = Path(__file__).resolve().parent.parent / "netsharp" / "parser_tables.py"


def main() -> None:
    TABLES.write_text(parser_tables_source(grammar_path().read_text(encoding="utf-8")),
                      encoding="utf-8")
    print(f"wrote {TABLES}")


if __name__ == "__main__":
    main()
