"""The scanner on generated Markdown: code never yields a link, and a rewrite changes only the links."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from picbeam.markdown_links import read_document

words = st.text(alphabet=st.sampled_from("abc xyz é中 _.,?"), max_size=12)  # no list markers: they own indented lines
names = st.text(alphabet=st.sampled_from("abcxyz-_0123 é中"), min_size=1, max_size=8)


@st.composite
def fragments(draw: st.DrawFn) -> tuple[str, int]:
    """A piece of Markdown and how many image links that move it holds."""
    name = draw(names).strip() or "x"
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return f"![{draw(words)}]({name.replace(' ', '%20')}.png)", 1
    if kind == 1:
        return f'see <img src="{name}.png" alt="{draw(words).replace(chr(34), "")}">', 1
    if kind == 2:
        return f"![[{name}.png]]", 1
    if kind == 3:
        return f"`![code]({name}-code.png)`", 0
    if kind == 4:
        return f"\n\n```\n![code]({name}-code.png)\n<img src='code.png'>\n```\n\n", 0
    if kind == 5:
        return f"\n\n    ![code]({name}-code.png)\n\n", 0
    if kind == 6:
        return f"![a](<{name}.png>)", 1
    if kind == 7:
        return f"[link]({name}-code.png)", 0
    return draw(words), 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(fragments(), max_size=12),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]),
)
def test_generated_markdown(tmp_path: Path, pieces: list[tuple[str, int]], newline: str, encoding: str) -> None:
    text = "\n".join(piece for piece, _ in pieces).replace("\n", newline)
    post = tmp_path / "post.md"
    raw = text.encode(encoding)
    post.write_bytes(raw)
    document = read_document(post)
    assert document.encode(document.text) == raw
    assert not [link for link in document.links if "code" in link.target]
    assert len(document.links) == sum(count for _, count in pieces)
    rewritten = document.rewritten({link: f"https://new.example/{n}.png" for n, link in enumerate(document.links)})
    post.write_bytes(document.encode(rewritten))
    again = read_document(post)
    # the same links, now pointing at the new URLs, and the bytes between them unchanged (the text may
    # decode otherwise: a file's encoding is guessed from its content, which changed)
    assert [link.target for link in again.links if link.kind != "embed"] == [
        f"https://new.example/{n}.png" for n in range(len(again.links))
    ]

    def between(doc: object, links: list) -> list[bytes]:
        out, last = [], 0
        for link in links:
            out.append(doc.encode(doc.text[last : link.start]))  # type: ignore[attr-defined]
            last = link.end
        return out

    kept = [link for link in document.links if link.kind != "embed"]
    if len(kept) == len(document.links):
        assert between(document, document.links) == between(again, again.links)


def test_pathological_markdown_is_scanned_in_linear_time(tmp_path: Path) -> None:
    """Inputs that make a naive scanner quadratic (this test would take minutes, not a second)."""
    from picbeam.markdown_links import scan_markdown

    assert len(scan_markdown("![" * 1000 + "](a.png)")) == 1  # markdown-it itself is slower here
    assert scan_markdown(" ".join("`" * (i % 40 + 1) for i in range(8000))) == []
    assert scan_markdown("`" + " ``" * 8000) == []
    assert len(scan_markdown("![a](b.png) " * 3000)) == 3000
    text = "![outer ![inner](i.png)](o.png)"
    assert sorted(text[link.start : link.end] for link in scan_markdown(text)) == ["i.png", "o.png"]


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    import pytest
    from picbeam.markdown_links import MAX_DOCUMENT, UnreadableFile

    big = tmp_path / "dump.md"
    with open(big, "wb") as handle:
        handle.truncate(MAX_DOCUMENT + 1)  # sparse: no disk used
    with pytest.raises(UnreadableFile, match="not a post"):
        read_document(big)
