"""Where --data's rows come from: a file, a folder of shards, or a dataset on the Hugging Face hub.

    train.jsonl | train.json | train.parquet       one file (the split is ignored)
    DIR  or  DIR@test                              the folder's data files of that split
    owner/name  or  owner/name@test                the hub dataset's files of that split, fetched with
                                                   huggingface_hub, then read as local files

A split is the set of data files whose name, or a folder on whose path, starts with it (`data/test-00000-of-00001
.parquet`, `train/0.parquet`); a dataset with no split in its file names (ViRL39K: one `39Krelease.parquet` and an
`images.zip`) is all `train`. The rule follows EasyR1 (`path@split`) and the hub's file-name convention.

Rows are read without holding a file's decoded images: a parquet file is read one record batch at a time.
"""

import json
import os
import re
import shutil


DATA_EXTENSIONS = (".parquet", ".jsonl", ".json")  # in this order of preference within a folder
ARCHIVE_EXTENSIONS = (".zip",)
KNOWN_SPLITS = ("train", "validation", "valid", "val", "dev", "test", "eval")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
PARQUET_BATCH_ROWS = 256  # rows converted to Python at a time: bounds the memory of reading a large file


class DataError(ValueError):
    """A problem with the data: str() is 'file:line: what is wrong', `reason` its category for counting."""

    def __init__(self, where, reason, detail=""):
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason


def split_spec(spec, split):
    """'PATH@SPLIT' -> (PATH, SPLIT); without '@', (spec, `split`: the caller's default, train or test)."""
    if not os.path.exists(spec) and "@" in spec:
        spec, split = spec.rsplit("@", 1)
    return spec, split


def is_hub_id(path):
    """owner/name that is not a local path and does not look like a file name."""
    return bool(HUB_ID.fullmatch(path)) and not os.path.exists(path) and not path.endswith(DATA_EXTENSIONS)


def _name_parts(relative_path):
    parts = relative_path.replace("\\", "/").split("/")
    return parts[:-1] + [parts[-1].split(".")[0]]


def in_split(relative_path, split):
    """Whether a data file belongs to `split`: its name or one of its folders is the split's name, or starts with it
    followed by a non-letter (`test-00000-of-00001`, `train_0`; `training` is not `train`)."""
    return any(part == split or (part.startswith(split) and not part[len(split)].isalpha())
               for part in _name_parts(relative_path))


def split_files(relative_paths, split, where):
    """The data files of `split` (relative paths, sorted); all of them for train when no file names a split."""
    chosen = sorted(p for p in relative_paths if in_split(p, split))
    if chosen:
        return chosen
    named = sorted({s for s in KNOWN_SPLITS if any(in_split(p, s) for p in relative_paths)})
    if not named and split == "train":
        return sorted(relative_paths)
    raise DataError(where, f"no '{split}' split",
                    f"its data files make up: {', '.join(named or ['train'])}; choose one with @SPLIT")


def data_files_in(folder):
    """Relative paths of the data files under `folder` (hidden folders skipped), parquet preferred over JSONL over
    JSON: a hub folder often holds a README or a dataset_info.json beside its parquet shards."""
    found = {extension: [] for extension in DATA_EXTENSIONS}
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in files:
            extension = next((e for e in DATA_EXTENSIONS if name.endswith(e)), None)
            if extension and not name.startswith("."):
                found[extension].append(os.path.relpath(os.path.join(root, name), folder))
    return next((paths for paths in found.values() if paths), [])


def archives_in(folder):
    """Image archives at the top of `folder` (ViRL39K ships its images as images.zip)."""
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(ARCHIVE_EXTENSIONS))


def resolve(spec, split="train"):
    """--data -> dict(files: data file paths to read, image_dirs: folders relative image paths may be under,
    archives: image archives found but not extracted, name: what to call it in messages)."""
    path, split = split_spec(spec, split)
    if path != "synthetic" and is_hub_id(path):
        folder = fetch_from_hub(path, split, spec)
        return dict(files=_folder_files(folder, split, spec), image_dirs=[folder, *extract_archives(folder, path)],
                    archives=[], name=spec)
    if os.path.isdir(path):
        return dict(files=_folder_files(path, split, spec), image_dirs=[os.path.abspath(path)],
                    archives=archives_in(path), name=spec)
    if not os.path.isfile(path):
        raise DataError(path, "data file not found")
    return dict(files=[path], image_dirs=[], archives=[], name=spec)


def _folder_files(folder, split, where):
    relative = data_files_in(folder)
    if not relative:
        raise DataError(where, "no data files in this folder", f"looked for {', '.join(DATA_EXTENSIONS)} files")
    return [os.path.join(folder, p) for p in split_files(relative, split, where)]


# ----------------------------------------------------------------------------------------------------------
# Reading one file's rows


def read_rows(path):
    """(number of rows, iterator of (where, record)) for a .parquet, .jsonl or .json file; `where` is
    'FILE:LINE' for JSONL and 'FILE:ROW' (1 = the first row) otherwise. A record that is not JSON yields a
    DataError in its place, so a caller that skips bad rows can count it."""
    if path.endswith(".parquet"):
        return _parquet_rows(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if path.endswith(".json"):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            if error.msg != "Extra data":  # "Extra data": JSON lines in a .json file, read as such below
                raise DataError(path, "malformed JSON", f"line {error.lineno}: {error.msg}") from None
        else:
            if not isinstance(rows, list):
                raise DataError(path, "not a JSON list of rows", f"the file holds a {type(rows).__name__}")
            return len(rows), ((f"{path}:{number}", row) for number, row in enumerate(rows, start=1))
    lines = text.split("\n")  # not splitlines(): JSON strings may hold U+2028 and other line breaks
    return len(lines), _jsonl_rows(path, lines)


def _jsonl_rows(path, lines):
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as error:
                yield f"{path}:{number}", DataError(f"{path}:{number}", "malformed JSON", error.msg)


def _parquet_rows(path):
    import pyarrow
    import pyarrow.parquet

    try:
        # pre_buffer off: with it, the reader kept every column chunk it had read until the end (measured: the check
        # of a 1.5 GB file peaked at 3.3 GB instead of 1.8)
        parquet = pyarrow.parquet.ParquetFile(path, pre_buffer=False)
    except (pyarrow.ArrowException, OSError) as error:
        raise DataError(path, "not a parquet file", str(error).splitlines()[0]) from None

    def rows():
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                for record in batch.to_pylist():
                    number += 1
                    yield f"{path}:{number}", record
        except (pyarrow.ArrowException, OSError) as error:  # a damaged file can fail past its header
            raise DataError(f"{path}:{number + 1}", "unreadable parquet data",
                            str(error).splitlines()[0]) from None

    return parquet.metadata.num_rows, rows()


# ----------------------------------------------------------------------------------------------------------
# The Hugging Face hub


def hub_failure(error):
    """Why a hub call failed, in words, from its exception chain (huggingface_hub raises its own errors, OSError
    and httpx's errors, depending on where it failed)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError

    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    if any(isinstance(e, GatedRepoError) for e in chain):
        return "it is gated: accept its terms on its hub page and log in with `hf auth login`"
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return "no such dataset on the hub: check the name (a private one needs `hf auth login`)"
    if constants.HF_HUB_OFFLINE or any(isinstance(e, OfflineModeIsEnabled) for e in chain):
        return "offline mode is on (HF_HUB_OFFLINE) and it is not in the local cache"
    first = (str(chain[0]).strip().splitlines() or [type(chain[0]).__name__])[0]
    return f"huggingface.co cannot be reached and it is not in the local cache ({first[:200]})"


def fetch_from_hub(repo_id, split, spec):
    """The local folder (hub cache) holding `repo_id`'s data files of `split` and its image archives.

    Lists the repository, then downloads only those files (snapshot_download with allow_patterns); offline, a
    snapshot already in the cache is used as it is. Any failure: a DataError saying what to do instead.
    """
    import huggingface_hub

    try:
        try:
            files = huggingface_hub.list_repo_files(repo_id, repo_type="dataset")
        except Exception as listing_error:  # offline or unreachable: a snapshot cached earlier still serves
            try:
                return huggingface_hub.snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
            except Exception:
                raise listing_error from None
        data_files = [f for f in files if f.endswith(DATA_EXTENSIONS)]
        if not data_files:
            raise DataError(spec, "the dataset has no data files",
                            f"looked for {', '.join(DATA_EXTENSIONS)} files")
        preferred = next(e for e in DATA_EXTENSIONS if any(f.endswith(e) for f in data_files))
        chosen = split_files([f for f in data_files if f.endswith(preferred)], split, spec)
        archives = [f for f in files if f.endswith(ARCHIVE_EXTENSIONS) and "/" not in f]
        return huggingface_hub.snapshot_download(repo_id, repo_type="dataset", allow_patterns=chosen + archives)
    except DataError:
        raise
    except Exception as error:  # every hub failure becomes one line; nothing but hub calls runs in this block
        raise DataError(spec, "no such local file or folder, and cannot fetch it from the Hugging Face hub",
                        f"{hub_failure(error)}; download it where there is internet with `hf download --repo-type "
                        f"dataset {repo_id} --local-dir DIR`, unzip any image archive in DIR, then pass --data "
                        f"DIR" + (f"@{split}" if split != "train" else "")) from None


def extraction_root(folder, repo_id):
    """Where the archives of a hub snapshot are extracted: beside the hub cache, one folder per snapshot."""
    from huggingface_hub import constants

    snapshot = os.path.basename(os.path.normpath(folder))
    return os.path.join(constants.HF_HOME, "fast-grpo-extracted", repo_id.replace("/", "--"), snapshot)


def extract_archives(folder, repo_id):
    """Extract each image archive of a hub snapshot once (a finished extraction is reused); returns the folders
    that relative image paths may then be under."""
    archives = archives_in(folder)
    if not archives:
        return []
    root = extraction_root(folder, repo_id)
    destinations = [os.path.join(root, os.path.basename(archive).rsplit(".", 1)[0]) for archive in archives]
    for archive, destination in zip(archives, destinations):
        if not os.path.isdir(destination):
            extract_zip(archive, destination)
    # ViRL39K's paths are images/xxx.jpg, its images.zip's files are under images/: root/images/xxx.jpg. A data
    # set whose paths leave out the archive's name finds them under the destination itself.
    return [root, *destinations]


def extract_zip(archive, destination):
    """Unzip `archive` into `destination`, atomically (into a temporary folder, then renamed), refusing members
    that would land outside it. An archive whose files all sit in one folder named as `destination` is (images/
    in images.zip) does not repeat that folder: images.zip's images/x.jpg becomes destination/x.jpg."""
    import zipfile

    temporary = f"{destination}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            prefix = os.path.basename(destination) + "/"
            strip = len(prefix) if members and all(m.filename.startswith(prefix) for m in members) else 0
            base = os.path.realpath(temporary)
            targets = [os.path.realpath(os.path.join(base, m.filename[strip:])) for m in members]
            for member, target in zip(members, targets):
                if os.path.commonpath([base, target]) != base:
                    raise DataError(archive, "unsafe archive",
                                    f"member {member.filename!r} would land outside the folder")
            print(f"extracting {archive} into {destination} (once)")
            for member, target in zip(members, targets):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zipped.open(member) as source, open(target, "wb") as copy:
                    shutil.copyfileobj(source, copy)
        try:
            os.rename(temporary, destination)
        except OSError:
            if not os.path.isdir(destination):
                raise
            shutil.rmtree(temporary, ignore_errors=True)  # another process (torchrun) finished the same extraction
    except (OSError, zipfile.BadZipFile) as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise DataError(archive, "cannot extract the image archive",
                        f"{error}; unzip it yourself and pass the folder with --image-dir") from None
    except DataError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
