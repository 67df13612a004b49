"""The journal on its own: header, identity, checksums, the two modes, and the one rule for bad lines."""

import hashlib
import json

import pytest

from almat.journal import CutLineWarning, Journal, JournalError, JournalWriteError, checksum


class Shared(Journal):
    kind, what = "almat-test", "test file"


class Exclusive(Shared):
    exclusive = True


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_new_file_gets_one_header_and_records_their_checksums(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Shared(path, {"model": "m1", "note": "made today"}, identity=["model"])
    assert journal.read() == []
    assert journal.append([{"key": "a", "e": -4.25}]) == [{"key": "a", "e": -4.25}]
    header, record = lines(path)
    assert header == {"type": "header", "kind": "almat-test", "format": 1, "journal": 1,
                      "model": "m1", "note": "made today"}
    # the checksum, computed here from its definition: SHA-256 of the sorted, compact JSON
    assert record["check"] == hashlib.sha256(b'{"e":-4.25,"key":"a"}').hexdigest()[:16]
    assert checksum({"key": "a", "e": -4.25}) == record["check"]
    assert Shared(path, {"model": "m1", "note": "made later"}, identity=["model"]).read() == [
        {"key": "a", "e": -4.25}]


def test_a_header_of_another_identity_kind_or_newer_format_is_refused(tmp_path):
    path = tmp_path / "j.jsonl"
    Shared(path, {"model": "m1"}, identity=["model"]).read()
    with pytest.raises(JournalError, match="written with model 'm1', not 'm2'"):
        Shared(path, {"model": "m2"}, identity=["model"]).read()
    with pytest.raises(JournalError, match="is not a journal"):
        Journal(path, {}).read()
    header = dict(lines(path)[0], format=7)
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(JournalError, match="test file format 7; this almat reads up to 1. Update almat"):
        Shared(path, {}).read()


def test_shared_writers_see_each_others_records_and_a_key_is_kept_once(tmp_path):
    path = tmp_path / "j.jsonl"
    first, second = Shared(path, {}), Shared(path, {})
    first.read(), second.read()
    assert first.append([{"key": "a", "v": 1}, {"key": "b", "v": 1}, {"key": "a", "v": 2}]) == [
        {"key": "a", "v": 1}, {"key": "b", "v": 1}]
    assert second.append([{"key": "b", "v": 3}, {"key": "c", "v": 3}]) == [
        {"key": "a", "v": 1}, {"key": "b", "v": 1}, {"key": "c", "v": 3}]
    assert [r["key"] for r in lines(path)[1:]] == ["a", "b", "c"]


def test_an_exclusive_writer_is_refused_once_another_appended(tmp_path):
    path = tmp_path / "j.jsonl"
    first, second = Exclusive(path, {}), Exclusive(path, {})
    first.read(), second.read()
    second.append([{"n": 1}])
    content = path.read_bytes()
    with pytest.raises(JournalError, match="changed since it was last read here"):
        first.append([{"n": 2}])
    assert path.read_bytes() == content


def test_a_shared_writer_follows_a_file_deleted_and_made_again(tmp_path):
    path = tmp_path / "j.jsonl"
    old = Shared(path, {})
    old.append([{"key": f"k{i}", "pad": "x" * 50} for i in range(5)])
    path.unlink()
    Shared(path, {}).append([{"key": f"n{i}", "pad": "y" * 60} for i in range(6)])  # larger than before
    assert [r["key"] for r in old.append([{"key": "z"}])] == [f"n{i}" for i in range(6)] + ["z"]


def test_the_one_rule_a_cut_last_line_is_dropped_any_other_bad_line_refused(tmp_path):
    path = tmp_path / "j.jsonl"
    Shared(path, {}).append([{"key": "a"}, {"key": "b"}])
    good = path.read_bytes()
    path.write_bytes(good + b'{"key": "c", "che')
    with pytest.warns(CutLineWarning, match="cut short"):
        assert [r["key"] for r in Shared(path, {}).read()] == ["a", "b"]
    assert path.read_bytes() == good
    header, *records = good.decode().splitlines()
    for bad, words in [(header, "Line 3 of .*: a second header"), ("[1]", "Line 3 of .*is not a record"),
                       ("{", "Line 3 of .* is not valid JSON"), ('{"key": "c"}', "Line 3 of .*no checksum")]:
        path.write_text("\n".join([header, records[0], bad, records[1]]) + "\n")
        with pytest.raises(JournalError, match=words):
            Shared(path, {}).read()
    path.write_bytes(b"one line without its newline")
    with pytest.raises(JournalError, match="holds no complete line"):
        Shared(path, {}).read()
    assert path.read_bytes() == b"one line without its newline"


def test_a_folder_or_a_file_in_the_way_is_refused_in_one_line(tmp_path):
    with pytest.raises(JournalWriteError, match=f"{tmp_path} is a folder, not a file.*test.jsonl"):
        Shared(tmp_path, {}).read()
    (tmp_path / "file").write_text("")
    with pytest.raises(JournalWriteError, match="Cannot create the folder of"):
        Shared(tmp_path / "file" / "j.jsonl", {}).append([{"key": "a"}])
    assert Shared(tmp_path / "file" / "j.jsonl", {}).read(create=False) == []
