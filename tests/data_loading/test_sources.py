"""data_loading/sources.py: which files a split is, hub datasets (on a local folder with the hub's layout: tests never reach
the hub), image archives, and the one line when the hub cannot be used."""

import fnmatch
import os
import shutil
import zipfile

import pytest

from data_loading import loader, sources
import eval as evaluation
import fast_grpo
import prepare_data
from helpers import geometry3k_rows, virl39k_rows, write_parquet

GEOMETRY3K = ["data/test-00000-of-00001.parquet", "data/train-00000-of-00002.parquet",
              "data/train-00001-of-00002.parquet", "data/validation-00000-of-00001.parquet"]


def test_a_split_is_the_files_named_for_it():
    assert sources.split_files(GEOMETRY3K, "train", "x") == GEOMETRY3K[1:3]
    assert sources.split_files(GEOMETRY3K, "test", "x") == GEOMETRY3K[:1]
    assert sources.split_files(["train/0.parquet", "test/0.parquet"], "test", "x") == ["test/0.parquet"]
    assert sources.split_files(["39Krelease.parquet"], "train", "x") == ["39Krelease.parquet"]  # no split: train
    with pytest.raises(loader.DataError, match=r"^x: no 'test' split \(its data files make up: train; choose one"):
        sources.split_files(["39Krelease.parquet"], "test", "x")
    with pytest.raises(loader.DataError, match=r"no 'dev' split \(its data files make up: test, train, validation;"):
        sources.split_files(GEOMETRY3K, "dev", "x")
    assert not sources.in_split("data/training-0.parquet", "train")  # a longer word is another split


def fake_hub(monkeypatch, tmp_path, remote):
    """huggingface_hub's list_repo_files and snapshot_download, serving the folder `remote` (laid out as the hub
    repository is) into a cache snapshot folder under tmp_path, as the real ones do; HF_HOME under tmp_path.
    Returns the list of allow_patterns each download asked for."""
    import huggingface_hub
    from huggingface_hub import constants

    downloads = []

    def list_repo_files(repo_id, repo_type=None):
        assert repo_type == "dataset"
        return sorted(os.path.relpath(os.path.join(root, name), remote).replace(os.sep, "/")
                      for root, _, names in os.walk(remote) for name in names)

    def snapshot_download(repo_id, repo_type=None, allow_patterns=None, local_files_only=False):
        snapshot = str(tmp_path / "hub" / f"datasets--{repo_id.replace('/', '--')}" / "snapshots" / "0123abcd")
        for name in list_repo_files(repo_id, repo_type):
            if allow_patterns is None or any(fnmatch.fnmatch(name, p) for p in allow_patterns):
                os.makedirs(os.path.dirname(os.path.join(snapshot, name)), exist_ok=True)
                shutil.copy(os.path.join(remote, name), os.path.join(snapshot, name))
        downloads.append(sorted(allow_patterns or []))
        return snapshot

    monkeypatch.setattr(huggingface_hub, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf-home"))
    return downloads


def test_a_hub_dataset_downloads_only_its_split(monkeypatch, tmp_path):
    remote = tmp_path / "remote"
    write_parquet(str(remote / GEOMETRY3K[0]), geometry3k_rows(1, start=7))
    write_parquet(str(remote / GEOMETRY3K[1]), geometry3k_rows(2))
    write_parquet(str(remote / GEOMETRY3K[2]), geometry3k_rows(1, start=2))
    write_parquet(str(remote / GEOMETRY3K[3]), geometry3k_rows(1, start=9))
    (remote / "README.md").write_text("card")
    downloads = fake_hub(monkeypatch, tmp_path, str(remote))
    assert [e["id"] for e in loader.load_examples("hiyouga/geometry3k@test")] == [7]
    assert [e["id"] for e in loader.load_examples("hiyouga/geometry3k")] == [0, 1, 2]  # split default: train
    assert downloads == [GEOMETRY3K[:1], GEOMETRY3K[1:3]]  # only the split's files are fetched


def test_a_hub_image_archive_is_extracted_once(monkeypatch, tmp_path, capsys):
    remote = tmp_path / "remote"
    write_parquet(str(remote / "39Krelease.parquet"), virl39k_rows(str(tmp_path / "originals")))
    with zipfile.ZipFile(remote / "images.zip", "w") as archive:
        for name in sorted(os.listdir(tmp_path / "originals" / "images")):
            archive.write(tmp_path / "originals" / "images" / name, f"images/{name}")
    downloads = fake_hub(monkeypatch, tmp_path, str(remote))
    first = loader.load_examples("TIGER-Lab/ViRL39K")
    extracted = str(tmp_path / "hf-home" / "fast-grpo-extracted" / "TIGER-Lab--ViRL39K" / "0123abcd")
    assert first[1]["image"] == [os.path.join(extracted, "images", "q1-0.jpg"),
                                 os.path.join(extracted, "images", "q1-1.jpg")]
    assert downloads == [["39Krelease.parquet", "images.zip"]]
    assert capsys.readouterr().out.count("extracting") == 1
    assert loader.load_examples("TIGER-Lab/ViRL39K") == first
    assert "extracting" not in capsys.readouterr().out  # the finished extraction is reused


def test_offline_a_cached_snapshot_is_used(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import OfflineModeIsEnabled

    snapshot = tmp_path / "snapshot"
    write_parquet(str(snapshot / "data" / "train-0.parquet"), geometry3k_rows(2))

    def offline(*args, **kwargs):
        raise OfflineModeIsEnabled("offline mode is enabled")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", offline)
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo_id, repo_type, local_files_only: str(snapshot) if local_files_only else offline())
    assert len(loader.load_examples("hiyouga/geometry3k")) == 2


SCRIPTS = {"fast_grpo.py": lambda argv: fast_grpo.main(argv + ["--output-dir", "/nonexistent/run"]),
           "eval.py": evaluation.main,
           "prepare_data.py": lambda argv: prepare_data.main(argv + ["--output", "/nonexistent/out.parquet"])}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_hub_dataset_that_cannot_be_fetched_gives_one_line(script, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 does; never touches the network
    with pytest.raises(SystemExit) as exit_info:
        SCRIPTS[script](["--data", "nobody/no-such-data@test"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: nobody/no-such-data@test: no such local file or folder, and cannot fetch it from the Hugging Face "
        "hub (offline mode is on (HF_HUB_OFFLINE) and it is not in the local cache; download it where there is "
        "internet with `hf download --repo-type dataset nobody/no-such-data --local-dir DIR`, unzip any image "
        "archive in DIR, then pass --data DIR@test)")


def test_an_unknown_hub_dataset_is_named_as_such(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    def not_found(*args, **kwargs):  # without an HTTP response: only the type matters here
        error = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        Exception.__init__(error, "404 Client Error")
        raise error

    def not_cached(*args, **kwargs):
        raise LocalEntryNotFoundError("not in the cache")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", not_found)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_cached)
    with pytest.raises(loader.DataError, match=r"\(no such dataset on the hub: check the name \(a private one needs "):
        loader.load_examples("nobody/typo")


def test_an_archive_member_outside_the_folder_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.writestr("images/ok.png", b"x")
        archive.writestr("../../escaped.png", b"x")
    with pytest.raises(loader.DataError, match="unsafe archive \\(member '../../escaped.png' would land outside"):
        sources.extract_zip(str(tmp_path / "images.zip"), str(tmp_path / "out" / "images"))
    assert not os.path.exists(tmp_path / "escaped.png") and not os.path.exists(tmp_path / "out" / "images")


def test_two_processes_extracting_the_same_archive_both_succeed(tmp_path, monkeypatch):
    """Under torchrun every process finds the archive unextracted: the one that finishes second finds the folder
    already there, and carries on with it."""
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.writestr("images/a.png", b"first")
    destination = tmp_path / "out" / "images"

    def the_other_process_was_faster(source, target):  # its extraction appears just before this rename
        os.makedirs(target)
        with open(os.path.join(target, "a.png"), "wb") as f:
            f.write(b"first")
        raise OSError(39, "Directory not empty", target)

    monkeypatch.setattr(os, "rename", the_other_process_was_faster)
    sources.extract_zip(str(tmp_path / "images.zip"), str(destination))
    assert (destination / "a.png").read_bytes() == b"first"
    assert not [p for p in os.listdir(tmp_path / "out") if ".tmp-" in p]  # no temporary folder left behind
