"""LineSplitter: container output in arbitrary chunks -> whole lines (CR/LF-safe, UTF-8-safe, bounded)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sandbox.docker._lines import LineSplitter


def feed_all(chunks: list[bytes], **kw: int) -> list[str]:
    splitter = LineSplitter(**kw)
    out: list[str] = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    return out + splitter.flush()


def test_lf_crlf_and_cr_all_end_lines() -> None:
    assert feed_all([b"a\nb\r\nc\rd"]) == ["a", "b", "c", "d"]


def test_crlf_split_across_chunks_is_one_break() -> None:
    assert feed_all([b"one\r", b"\ntwo\r", b"\n"]) == ["one", "two"]


def test_utf8_character_split_across_chunks() -> None:
    data = "héllo → wörld\n".encode()
    assert feed_all([data[:2], data[2:9], data[9:]]) == ["héllo → wörld"]


def test_empty_and_blank_lines_are_dropped() -> None:
    assert feed_all([b"\n\n  \r\nx\n"]) == ["x"]


def test_unterminated_last_line_comes_with_flush() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":1}') == []
    assert splitter.flush() == ['{"a":1}']


def test_overlong_line_is_dropped_and_counted() -> None:
    splitter = LineSplitter(max_line=10)
    out = splitter.feed(b"x" * 8) + splitter.feed(b"y" * 8) + splitter.feed(b"zz\nok\n")
    assert out == ["ok"]
    assert splitter.dropped == 1


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), min_size=1
        ).filter(str.strip),
        max_size=8,
    ),
    st.lists(st.integers(min_value=1, max_value=7), max_size=20),
    st.sampled_from(["\n", "\r\n"]),
)
def test_any_chunking_gives_the_same_lines(lines: list[str], cuts: list[int], newline: str) -> None:
    data = "".join(line + newline for line in lines).encode()
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(data[pos : pos + cut])
        pos += cut
    chunks.append(data[pos:])
    assert feed_all(chunks) == lines
