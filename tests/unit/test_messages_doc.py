"""docs/reference/messages.md is generated from the model; this fails when someone forgot to regenerate it."""

from __future__ import annotations

from pathlib import Path

from dropcopy_client._docgen import main, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "messages.md"


def test_messages_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/reference/messages.md is stale: run  python -m dropcopy_client._docgen --write docs/reference/messages.md"
    )


def test_reference_names_every_tagged_field() -> None:
    import attrs

    from dropcopy_client import _messages

    text = render()
    for name in _messages.__all__:
        cls = getattr(_messages, name)
        if isinstance(cls, type) and attrs.has(cls):
            for a in attrs.fields(cls):
                if "tag" in a.metadata:
                    assert f"| `{a.name}` |" in text, f"{name}.{a.name}"


def test_write_flag(tmp_path: Path) -> None:
    target = tmp_path / "out" / "messages.md"
    assert main(["--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render()
