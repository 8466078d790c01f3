"""Datasets by URL: `URLs` (the classic dataset names), `untar_data` and `download_data`, with a configurable cache,
a configurable server (a team mirror), and a checks registry (size and sha256 per URL).

Where things go: `$TIERS_HOME` (default `~/.tiers`) holds `archive/` (downloads), `data/` (extracted datasets),
`models/`, `checks.json` (the registry) and an optional `config.ini`:

    [tiers]
    data = /big/disk/datasets        ; relative paths are relative to TIERS_HOME
    archive = archive
    base_url = http://mirror.example.org/fastai/   ; or the TIERS_DATA_URL environment variable
    checks_files = /team/checks.json   ; more registries, comma-separated

With a `base_url`, every URL under `URLs.S3` is fetched from the mirror instead (`.../fast-ai-sample/x.tgz` becomes
`<base_url>/sample/x.tgz`). A URL with no registry entry is recorded there after its first download (size and
sha256), so a later download of it is verified.
"""

import configparser
import json
import os
import urllib.parse
from pathlib import Path

from tiers.data.download import DownloadError, archive_stem, download_url, extract_archive, file_sha256

__all__ = ["URLs", "untar_data", "download_data", "tiers_home", "tiers_cfg", "tiers_path", "resolve_url",
           "load_checks", "DownloadError"]

_FOLDERS = {"data": "data", "archive": "archive", "model": "models", "storage": "tmp"}


def tiers_home(base: str | Path | None = None) -> Path:
    "The cache root: `base` if given, else `$TIERS_HOME`, else `~/.tiers`."
    return Path(base or os.environ.get("TIERS_HOME") or "~/.tiers").expanduser()


def tiers_cfg(base: str | Path | None = None) -> dict:
    """The settings, from `<home>/config.ini` (section `[tiers]`) over the defaults: folder paths for `data`,
    `archive`, `model`, `storage` (absolute), `base_url` (`$TIERS_DATA_URL` wins), and the registry files `checks`
    (where new entries are written) and `checks_files` (more to read)."""
    home = tiers_home(base)
    cfg = {k: str(home / v) for k, v in _FOLDERS.items()}
    cfg.update(base_url="", checks=str(home / "checks.json"), checks_files="")
    ini = home / "config.ini"
    if ini.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(ini)
        except configparser.Error as e:
            raise ValueError(f"The tiers config file {ini} cannot be read: {e}. Fix or delete it.") from e
        if parser.has_section("tiers"):
            for k, v in parser.items("tiers"):
                if k in _FOLDERS or k == "checks":
                    v = str((home / Path(v).expanduser()) if not Path(v).expanduser().is_absolute()
                            else Path(v).expanduser())
                cfg[k] = v
    if os.environ.get("TIERS_DATA_URL"):
        cfg["base_url"] = os.environ["TIERS_DATA_URL"]
    return cfg


def tiers_path(folder: str = "data", base: str | Path | None = None) -> Path:
    "The folder `folder` (`data`, `archive`, `model` or `storage`) of the cache."
    cfg = tiers_cfg(base)
    if folder not in _FOLDERS:
        raise ValueError(f"tiers_path: unknown folder {folder!r}; use one of {list(_FOLDERS)}.")
    return Path(cfg[folder])


class URLs:
    """The URLs of the classic datasets and pretrained models (same names as in fastai), and `URLs.path(url)`,
    where a URL's download is kept."""

    LOCAL_PATH = Path.cwd()
    S3 = "https://s3.amazonaws.com/fast-ai-"
    URL = f"{S3}sample/"
    S3_IMAGE = f"{S3}imageclas/"
    S3_IMAGELOC = f"{S3}imagelocal/"
    S3_AUDI = f"{S3}audio/"
    S3_NLP = f"{S3}nlp/"
    S3_COCO = f"{S3}coco/"
    S3_MODEL = f"{S3}modelzoo/"

    # samples (small, quick to download)
    ADULT_SAMPLE = f"{URL}adult_sample.tgz"
    BIWI_SAMPLE = f"{URL}biwi_sample.tgz"
    CIFAR = f"{URL}cifar10.tgz"
    COCO_SAMPLE = f"{S3_COCO}coco_sample.tgz"
    COCO_TINY = f"{S3_COCO}coco_tiny.tgz"
    HUMAN_NUMBERS = f"{URL}human_numbers.tgz"
    IMDB = f"{S3_NLP}imdb.tgz"
    IMDB_SAMPLE = f"{URL}imdb_sample.tgz"
    ML_SAMPLE = f"{URL}movie_lens_sample.tgz"
    ML_100k = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    MNIST_SAMPLE = f"{URL}mnist_sample.tgz"
    MNIST_TINY = f"{URL}mnist_tiny.tgz"
    MNIST_VAR_SIZE_TINY = f"{S3_IMAGE}mnist_var_size_tiny.tgz"
    PLANET_SAMPLE = f"{URL}planet_sample.tgz"
    PLANET_TINY = f"{URL}planet_tiny.tgz"
    CAMVID_TINY = f"{URL}camvid_tiny.tgz"
    DOGS = f"{URL}dogscats.tgz"

    # image classification
    IMAGENETTE = f"{S3_IMAGE}imagenette2.tgz"
    IMAGENETTE_160 = f"{S3_IMAGE}imagenette2-160.tgz"
    IMAGENETTE_320 = f"{S3_IMAGE}imagenette2-320.tgz"
    IMAGEWOOF = f"{S3_IMAGE}imagewoof2.tgz"
    IMAGEWOOF_160 = f"{S3_IMAGE}imagewoof2-160.tgz"
    IMAGEWOOF_320 = f"{S3_IMAGE}imagewoof2-320.tgz"
    IMAGEWANG = f"{S3_IMAGE}imagewang.tgz"
    IMAGEWANG_160 = f"{S3_IMAGE}imagewang-160.tgz"
    IMAGEWANG_320 = f"{S3_IMAGE}imagewang-320.tgz"
    CALTECH_101 = f"{S3_IMAGE}caltech_101.tgz"
    CARS = f"{S3_IMAGE}stanford-cars.tgz"
    CIFAR_100 = f"{S3_IMAGE}cifar100.tgz"
    CUB_200_2011 = f"{S3_IMAGE}CUB_200_2011.tgz"
    FLOWERS = f"{S3_IMAGE}oxford-102-flowers.tgz"
    FOOD = f"{S3_IMAGE}food-101.tgz"
    MNIST = f"{S3_IMAGE}mnist_png.tgz"
    PETS = f"{S3_IMAGE}oxford-iiit-pet.tgz"
    LSUN_BEDROOMS = f"{S3_IMAGE}bedroom.tgz"

    # text
    AG_NEWS = f"{S3_NLP}ag_news_csv.tgz"
    AMAZON_REVIEWS = f"{S3_NLP}amazon_review_full_csv.tgz"
    AMAZON_REVIEWS_POLARITY = f"{S3_NLP}amazon_review_polarity_csv.tgz"
    DBPEDIA = f"{S3_NLP}dbpedia_csv.tgz"
    MT_ENG_FRA = f"{S3_NLP}giga-fren.tgz"
    SOGOU_NEWS = f"{S3_NLP}sogou_news_csv.tgz"
    WIKITEXT = f"{S3_NLP}wikitext-103.tgz"
    WIKITEXT_TINY = f"{S3_NLP}wikitext-2.tgz"
    YAHOO_ANSWERS = f"{S3_NLP}yahoo_answers_csv.tgz"
    YELP_REVIEWS = f"{S3_NLP}yelp_review_full_csv.tgz"
    YELP_REVIEWS_POLARITY = f"{S3_NLP}yelp_review_polarity_csv.tgz"

    # image localization and segmentation
    BIWI_HEAD_POSE = f"{S3_IMAGELOC}biwi_head_pose.tgz"
    CAMVID = f"{S3_IMAGELOC}camvid.tgz"
    PASCAL_2007 = f"{S3_IMAGELOC}pascal_2007.tgz"
    PASCAL_2012 = f"{S3_IMAGELOC}pascal_2012.tgz"
    SIIM_SMALL = f"{S3_IMAGELOC}siim_small.tgz"
    TCGA_SMALL = f"{S3_IMAGELOC}tcga_small.tgz"

    # pretrained models
    OPENAI_TRANSFORMER = f"{S3_MODEL}transformer.tgz"
    WT103_FWD = f"{S3_MODEL}wt103-fwd.tgz"
    WT103_BWD = f"{S3_MODEL}wt103-bwd.tgz"

    @staticmethod
    def path(url: str = ".", c_key: str = "archive", base: str | Path | None = None) -> Path:
        "Where the download of `url` is kept: `<cache folder c_key>/<file name of url>`."
        return tiers_path(c_key, base) / _fname(url)


def _fname(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise ValueError(f"The URL {url!r} does not end with a file name; give the URL of an archive or a file.")
    return name


def resolve_url(url: str, base: str | Path | None = None) -> str:
    "The URL actually fetched for `url`: under the configured mirror (`base_url`) when `url` is under `URLs.S3`."
    mirror = tiers_cfg(base)["base_url"].strip()
    if mirror and url.startswith(URLs.S3):
        return mirror.rstrip("/") + "/" + url[len(URLs.S3):]
    return url


def load_checks(base: str | Path | None = None) -> dict:
    "The checks registry: `{url: {'size': int, 'sha256': str}}` merged from the configured files (the own last)."
    cfg = tiers_cfg(base)
    files = [f.strip() for f in cfg["checks_files"].split(",") if f.strip()] + [cfg["checks"]]
    res: dict = {}
    for f in files:
        p = Path(f).expanduser()
        if not p.is_file():
            continue
        try:
            res.update(json.loads(p.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"The checks registry {p} is not valid JSON ({e}); fix or delete it.") from e
    return res


def _record_check(url: str, path: Path, base) -> None:
    reg = Path(tiers_cfg(base)["checks"])
    data = json.loads(reg.read_text()) if reg.is_file() else {}
    data[url] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    reg.parent.mkdir(parents=True, exist_ok=True)
    tmp = reg.with_name(reg.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, reg)  # never a half-written registry


def download_data(url: str, fname: str | Path | None = None, c_key: str = "archive", force_download: bool = False,
                  base: str | Path | None = None, timeout: float = 30, retries: int = 3,
                  progress: bool | None = None, checks: dict | None = None, record: bool = True) -> Path:
    """Download `url` (from the mirror when one is configured) to `fname` (default `URLs.path(url, c_key)`) unless
    it is already there, checking size and sha256 against the registry (or `checks`, `{'size':..., 'sha256':...}`);
    with `record`, a first download of an unregistered URL is recorded in the registry. Returns the file's path.

    >>> path = download_data(URLs.MNIST_TINY)   # doctest: +SKIP
    """
    dest = Path(fname) if fname is not None else URLs.path(url, c_key, base)
    if dest.exists() and not force_download:
        return dest
    if force_download:
        dest.unlink(missing_ok=True)
        dest.with_name(dest.name + ".part").unlink(missing_ok=True)
    entry = checks if checks is not None else load_checks(base).get(url)
    download_url(resolve_url(url, base), dest, size=(entry or {}).get("size"), sha256=(entry or {}).get("sha256"),
                 timeout=timeout, retries=retries, progress=progress)
    if record and entry is None and checks is None:
        _record_check(url, dest, base)
    return dest


def untar_data(url: str, archive: str | Path | None = None, data: str | Path | None = None, c_key: str = "data",
               force_download: bool = False, base: str | Path | None = None, timeout: float = 30,
               retries: int = 3, progress: bool | None = None, checks: dict | None = None) -> Path:
    """Download the archive at `url` (see `download_data`) into the `archive` folder and extract it, atomically,
    to `<data folder>/<archive name without extension>`; return that folder. An already extracted dataset is
    returned at once (no network), unless `force_download`. A corrupt archive is deleted and reported, so the next
    call downloads it again; an interrupted extraction never leaves a folder that looks complete.

    >>> path = untar_data(URLs.MNIST_TINY)   # doctest: +SKIP
    """
    name = _fname(url)
    arch_dir = Path(archive) if archive is not None else tiers_path("archive", base)
    data_dir = Path(data) if data is not None else tiers_path(c_key, base)
    dest = data_dir / archive_stem(name)
    if dest.exists() and not force_download:
        return dest
    fresh = force_download or not (arch_dir / name).exists()
    arch = download_data(url, arch_dir / name, force_download=force_download, base=base, timeout=timeout,
                         retries=retries, progress=progress, checks=checks, record=False)
    try:
        res = extract_archive(arch, dest, force=force_download)
    except DownloadError:
        arch.unlink(missing_ok=True)  # so the next call fetches a fresh copy
        raise
    # Only an archive that extracted cleanly is trusted enough to be recorded in the registry.
    if fresh and checks is None and url not in load_checks(base):
        _record_check(url, arch, base)
    return res
