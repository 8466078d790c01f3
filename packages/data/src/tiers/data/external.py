"""Datasets by URL: `URLs` (the classic dataset names), `untar_data` and `download_data`, with a configurable cache,
configurable servers (a team mirror for datasets, another for pretrained models), and checks registries (size and
sha256 per URL).

Where things go: `$TIERS_HOME` (default `~/.tiers`) holds `archive/` (downloads), `data/` (extracted datasets),
`samples/` (the offline look-alikes the `make_*` functions write: never read by `untar_data`), `models/`,
`checks.json` (the own registry), `registries/` (the last fetched copy of each remote registry) and an optional
`config.ini`:

    [tiers]
    data = /big/disk/datasets        ; relative paths are relative to TIERS_HOME
    archive = archive
    samples = samples
    base_url = http://mirror.example.org/fastai/     ; datasets from a team mirror, or $TIERS_DATA_URL
    model_url = http://models.example.org/fastai/    ; pretrained models from elsewhere, or $TIERS_MODEL_URL
    checks_files = /team/checks.json, https://example.org/checks.json   ; more registries, comma-separated

Servers. With a `base_url`, every dataset URL under `URLs.S3` is fetched from the mirror instead
(`.../fast-ai-sample/x.tgz` becomes `<base_url>/sample/x.tgz`). Pretrained models (URLs under `URLs.S3_MODEL`,
such as `URLs.WT103_FWD`) are never sent to that mirror: a data mirror holds datasets (the one
`tools/build_sample_mirror.py` builds holds generated ones), so a model request there would fail, or worse, get a
file of that name that is not those weights. A model goes to `<model_url>/<file name>` when `model_url` is set
(`.../fast-ai-modelzoo/wt103-fwd.tgz` becomes `<model_url>/wt103-fwd.tgz`), else to its original address. Both
settings must be http(s):// or file:// URLs.

Checks registries: JSON `{url: {"size": int, "sha256": hex}}`, keyed by the original (`URLs`) address. A download
reads
  * the own registry, `<home>/checks.json` (setting `checks`), where the first download of a URL that no registry
    knows is recorded, so a later download of it is verified;
  * `checks_files` from config.ini, then `$TIERS_CHECKS` (a team's registries): paths (relative ones in
    config.ini are relative to TIERS_HOME) or http(s)/file URLs, comma-separated. A URL is fetched afresh, with
    the same downloader, into `registries/` (written atomically) every time it is read, so a team's updates reach
    everyone. A named registry that cannot be read is an error, never skipped;
  * the registry the mirror serves next to its archives, `<base_url>/checks.json` (or `<model_url>/checks.json`),
    for downloads from that mirror: so `$TIERS_DATA_URL` alone is enough to use a mirror built by
    `tools/build_sample_mirror.py`. A mirror that answers 404 (or 410) for it has no registry; any other failure
    stops the download rather than let it go on unverified. Serve `{}` there to say "no registry" explicitly.
Every size and sha256 that any registry gives for a URL is checked; registries that disagree about a URL stop its
download with both values and where they came from.
"""

import configparser
import json
import os
import urllib.parse
import warnings

from tiers.data.download import (
    DownloadError,
    archive_stem,
    download_url,
    entry_problem,
    extract_archive,
    fetch_registry,
    file_sha256,
    merge_checks,
    read_registry,
)
from tiers.dispatch import Path
from tiers.dispatch.files import atomic_write_text

__all__ = ["URLs", "untar_data", "download_data", "tiers_home", "tiers_cfg", "tiers_path", "resolve_url",
           "load_checks", "DownloadError", "Config", "SAMPLE_MARKER"]

_FOLDERS = {"data": "data", "archive": "archive", "model": "models", "storage": "tmp", "samples": "samples"}
# The file the offline sample makers (`make_mnist_tiny`...) leave in a finished look-alike, holding the maker's name.
# No download has it (tools/build_sample_mirror.py leaves it out of its archives), so a folder holding it under the
# data folder is a look-alike an older tiers wrote there, never a dataset `untar_data` extracted.
SAMPLE_MARKER = ".complete"
# The settings an environment variable overrides (the variable wins over config.ini).
_ENV = {"base_url": "TIERS_DATA_URL", "model_url": "TIERS_MODEL_URL"}
_CHECKS_ENV = "TIERS_CHECKS"


def tiers_home(base: str | Path | None = None) -> Path:
    "The cache root: `base` if given, else `$TIERS_HOME`, else `~/.tiers`."
    return Path(base or os.environ.get("TIERS_HOME") or "~/.tiers").expanduser()


def tiers_cfg(base: str | Path | None = None) -> dict:
    """The settings, from `<home>/config.ini` (section `[tiers]`) over the defaults: folder paths for `data`,
    `archive`, `model`, `storage` (absolute), the servers `base_url` (`$TIERS_DATA_URL` wins) and `model_url`
    (`$TIERS_MODEL_URL` wins), and the registries `checks` (the own one, where new entries are written) and
    `checks_files` (more to read, as written in the file; `$TIERS_CHECKS` adds to them)."""
    home = tiers_home(base)
    cfg = {k: str(home / v) for k, v in _FOLDERS.items()}
    cfg.update(base_url="", model_url="", checks=str(home / "checks.json"), checks_files="")
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
                    v = str(home / Path(v).expanduser())  # an absolute path stays as it is
                cfg[k] = v
    for key, env in _ENV.items():
        if os.environ.get(env):
            cfg[key] = os.environ[env]
    return cfg


def tiers_path(folder: str = "data", base: str | Path | None = None) -> Path:
    "The folder `folder` (`data`, `archive`, `model`, `storage` or `samples`) of the cache."
    cfg = tiers_cfg(base)
    if folder not in _FOLDERS:
        raise ValueError(f"tiers_path: unknown folder {folder!r}; use one of {list(_FOLDERS)}.")
    return Path(cfg[folder])


class Config:
    """fastai's `Config()`, read-only: the cache folders as attributes (`Config().data`, `.archive`, `.model`,
    `.storage`, `.samples`: absolute `Path`s), the other settings (`base_url`, `model_url`, `checks`...) as
    strings, `Config()['data']` and `Config().path('data')` alike. Settings come from `tiers_cfg` (`$TIERS_HOME`,
    `config.ini`, the environment), read when the `Config` is made. Unlike fastai's, it writes no file: edit
    `<home>/config.ini` (see `tiers.data.external`) to change a setting.

    >>> Config().data   # doctest: +SKIP
    Path('/root/.tiers/data')
    """

    def __init__(self, base: str | Path | None = None):
        self.config_path = tiers_home(base)
        self.config_file = self.config_path / "config.ini"
        self.d = tiers_cfg(base)

    def __getitem__(self, key: str) -> Path | str:
        if key not in self.d:
            raise KeyError(f"Config has no setting {key!r}; the settings are {sorted(self.d)}.")
        return Path(self.d[key]) if key in _FOLDERS else self.d[key]

    def __getattr__(self, key: str) -> Path | str:
        if key.startswith("__") or key == "d":
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(str(e.args[0])) from None

    def __contains__(self, key: object) -> bool:
        return key in self.d

    def get(self, key: str, default: object = None) -> object:
        "The setting `key` (a `Path` for a folder), or `default` when there is none."
        return self[key] if key in self.d else default

    def path(self, key: str, default: str | None = None) -> Path:
        "The folder setting `key` (`data`, `archive`, `model`, `storage`, `samples`) as a `Path`."
        if key not in _FOLDERS and default is None:
            raise KeyError(f"Config.path: {key!r} is not a folder setting; use one of {list(_FOLDERS)}.")
        return Path(self.d.get(key, default))

    def __repr__(self) -> str:
        return f"Config({self.config_file}: {self.d})"


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


def _valid_url(value: str, origin: str, fix: str) -> str:
    "`value` stripped if it is an http(s) URL with a host or a file URL, else a ValueError naming it and `origin`."
    url = value.strip()
    p = urllib.parse.urlparse(url)
    try:
        ok = p.port is None or p.port >= 0  # reading .port raises on a port that is not a number
        ok = ok and not any(c.isspace() for c in url) and (
            (p.scheme in ("http", "https") and bool(p.hostname)) or (p.scheme == "file" and bool(p.path)))
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{value!r} (from {origin}) is not a valid http://, https:// or file:// URL. {fix}")
    return url


def _server(cfg: dict, key: str, base) -> str:
    "The server setting `key` (`base_url` or `model_url`), validated and ending in '/', or '' when unset."
    value = cfg.get(key, "").strip()
    if not value:
        return ""
    env = _ENV[key]
    origin = f"${env}" if os.environ.get(env) else f"{key} in {tiers_home(base) / 'config.ini'}"
    fix = "Set it to the root URL of the server (e.g. http://host:8000/fastai/), or unset it."
    return _valid_url(value, origin, fix).rstrip("/") + "/"


def _route(url: str, cfg: dict, base) -> tuple[str, str]:
    "(the URL fetched for `url`, the root of the mirror it comes from or '' when none)."
    if url.startswith(URLs.S3_MODEL):
        key, prefix = "model_url", URLs.S3_MODEL  # never base_url: see the module docstring
    elif url.startswith(URLs.S3):
        key, prefix = "base_url", URLs.S3
    else:
        return url, ""
    root = _server(cfg, key, base)
    return (root + url[len(prefix):], root) if root else (url, "")


def resolve_url(url: str, base: str | Path | None = None) -> str:
    """The URL actually fetched for `url`: a dataset under `URLs.S3` comes from `base_url` (the team mirror) when
    set; a pretrained model under `URLs.S3_MODEL` from `model_url` when set, never from `base_url`; any other URL
    from itself. A malformed setting raises a ValueError naming it.

    >>> resolve_url(URLs.MNIST_TINY)   # with TIERS_DATA_URL=http://mirror:8000/   # doctest: +SKIP
    'http://mirror:8000/sample/mnist_tiny.tgz'
    """
    return _route(url, tiers_cfg(base), base)[0]


def _named_registries(cfg: dict, base) -> list[tuple[str, str]]:
    "(origin, path or URL) of the registries named by `checks_files` (config.ini), then by `$TIERS_CHECKS`."
    home = tiers_home(base)
    named = [(f"checks_files in {home / 'config.ini'}", f.strip(), home) for f in cfg["checks_files"].split(",")]
    named += [(f"${_CHECKS_ENV}", f.strip(), Path.cwd()) for f in os.environ.get(_CHECKS_ENV, "").split(",")]
    return [(origin, f if "://" in f else str(rel / Path(f).expanduser())) for origin, f, rel in named if f]


def _registries(cfg: dict, base, mirrors: list[str], timeout: float = 30, retries: int = 3) -> list[tuple[str, dict]]:
    """(label, registry) of every registry to read: the own one (once it exists), the named ones, then the ones the
    `mirrors` (roots ending in '/') serve as `checks.json`. Remote ones are fetched afresh."""
    home, own = tiers_home(base), Path(cfg["checks"])
    found = []
    if own.exists():
        label = f"{own} (the own registry)"
        found.append((label, read_registry(own, label, "fix it or delete it")))
    for origin, loc in _named_registries(cfg, base):
        fix = f"correct it, or remove it from {origin}"
        if "://" in loc:
            url = _valid_url(loc, origin, f"Give paths or http(s)/file URLs of checks registries: {fix}.")
            label = f"{url} (named by {origin})"
            path = fetch_registry(url, home / "registries", label, False, timeout, retries)
        else:
            path = Path(loc)
            label = f"{path} (named by {origin})"
        found.append((label, read_registry(path, label, fix)))
    for root in dict.fromkeys(mirrors):
        label = f"{root}checks.json (the mirror's own registry)"
        served = fetch_registry(root + "checks.json", home / "registries", label, True, timeout, retries)
        if served is not None:  # None: the mirror has no registry (404/410)
            found.append((label, read_registry(served, label, "fix it on the mirror, or serve {} there")))
    return found


def load_checks(base: str | Path | None = None) -> dict:
    """The checks registry as one dict, `{url: {'size': int, 'sha256': str}}`: the own registry, `checks_files`,
    `$TIERS_CHECKS` and the configured mirrors' `checks.json`, merged (remote ones fetched afresh). Raises
    DownloadError where two registries disagree, and a clear error for a registry that cannot be read."""
    cfg = tiers_cfg(base)
    mirrors = [r for r in (_server(cfg, "base_url", base), _server(cfg, "model_url", base)) if r]
    found = _registries(cfg, base, mirrors)
    return {url: merge_checks(url, found) for url in dict.fromkeys(u for _, reg in found for u in reg)}


def _record_check(url: str, path: Path, base) -> None:
    reg = Path(tiers_cfg(base)["checks"])
    data = read_registry(reg, f"{reg} (the own registry)", "fix it or delete it") if reg.exists() else {}
    data[url] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    atomic_write_text(reg, json.dumps(data, indent=1, sort_keys=True))  # never a half-written registry


# ---------------------------------------------------------------------------------------------------- downloads
def _fetch_checked(url: str, dest: Path, force: bool, base, timeout: float, retries: int, progress: bool | None,
                   checks: dict | None) -> dict | None:
    "Download `url` (from its server) to `dest`, checked; return the registry entry used (None: none known)."
    if checks:
        problem = entry_problem(checks)
        if problem is not None:
            raise ValueError(f"checks={checks!r} for {url}: {problem}. Pass {{'size': bytes, 'sha256': hex}}.")
    cfg = tiers_cfg(base)
    src, mirror = _route(url, cfg, base)
    entry = checks if checks is not None else merge_checks(url, _registries(cfg, base, [mirror] if mirror else [],
                                                                      timeout, retries))
    if force:  # only now, so a bad setting or registry leaves the old copy in place
        dest.unlink(missing_ok=True)
        dest.with_name(dest.name + ".part").unlink(missing_ok=True)
    try:
        download_url(src, dest, size=(entry or {}).get("size"), sha256=(entry or {}).get("sha256"),
                     timeout=timeout, retries=retries, progress=progress)
    except DownloadError as e:
        if e.unreachable is not None:
            e.add_note(_offline_hint(url, dest, base))
        raise
    return entry


# The offline look-alikes of the classic datasets, by the layer that writes them (data cannot import those layers).
_LOOK_ALIKES = ("make_mnist_tiny(), make_pets_tiny(), make_camvid_tiny(), make_coco_tiny() (tiers.vision), "
                "make_imdb_sample(path) (tiers.text), make_adult_sample(path) (tiers.tabular), make_ratings_sample(path) "
                "(tiers.collab)")


def _offline_hint(url: str, dest: Path, base) -> str:
    "How to get `url` without reaching its host: the file where tiers reads it, a mirror, a look-alike."
    ini = tiers_home(base) / "config.ini"
    if url.startswith(URLs.S3_MODEL):
        mirror = f"or set TIERS_MODEL_URL (or model_url in {ini}) to a server that has it"
    elif url.startswith(URLs.S3):
        mirror = f"or set TIERS_DATA_URL (or base_url in {ini}) to a mirror that has it"
    else:
        mirror = ""
    hint = (f"To work without the network: copy {dest.name} (from another machine) to {dest}, where untar_data and "
            f"download_data use it without downloading{', ' + mirror if mirror else ''}.")
    if not url.startswith(URLs.S3_MODEL):
        hint += f" Synthetic offline look-alikes of the classic datasets: {_LOOK_ALIKES}."
    return hint


def download_data(url: str, fname: str | Path | None = None, c_key: str = "archive", force_download: bool = False,
                  base: str | Path | None = None, timeout: float = 30, retries: int = 3,
                  progress: bool | None = None, checks: dict | None = None, record: bool = True) -> Path:
    """Download `url` (from its server, see `resolve_url`) to `fname` (default `URLs.path(url, c_key)`) unless it
    is already there, checking size and sha256 against the registries (or `checks`, `{'size':..., 'sha256':...}`);
    with `record`, a first download of a URL no registry knows is recorded in the own one. Returns the file's path.

    >>> path = download_data(URLs.MNIST_TINY)   # doctest: +SKIP
    """
    dest = Path(fname) if fname is not None else URLs.path(url, c_key, base)
    if dest.exists() and not force_download:
        return dest
    entry = _fetch_checked(url, dest, force_download, base, timeout, retries, progress, checks)
    if record and entry is None and checks is None:
        _record_check(url, dest, base)
    return dest


def untar_data(url: str, archive: str | Path | None = None, data: str | Path | None = None, c_key: str = "data",
               force_download: bool = False, base: str | Path | None = None, timeout: float = 30,
               retries: int = 3, progress: bool | None = None, checks: dict | None = None) -> Path:
    """Download the archive at `url` (see `download_data`) into the `archive` folder and extract it, atomically,
    to `<data folder>/<archive name without extension>`; return that folder. An already extracted dataset is
    returned at once (no network), unless `force_download`. A corrupt archive is deleted and reported, so the next
    call downloads it again; an interrupted extraction never leaves a folder that looks complete. A folder there
    holding an offline look-alike (`SAMPLE_MARKER`: an older tiers' `make_mnist_tiny` wrote into the data folder) is
    never returned as the dataset: it is replaced by the download, with a warning.

    >>> path = untar_data(URLs.MNIST_TINY)   # doctest: +SKIP
    """
    name = _fname(url)
    arch_dir = Path(archive) if archive is not None else tiers_path("archive", base)
    data_dir = Path(data) if data is not None else tiers_path(c_key, base)
    dest = data_dir / archive_stem(name)
    look_alike = _sample_maker(dest)
    if dest.exists() and not force_download and look_alike is None:
        return dest
    if look_alike is not None:
        warnings.warn(f"untar_data: {dest} holds the synthetic look-alike {look_alike} wrote there (older tiers "
                      f"versions wrote the samples into the data folder), not the dataset {url}: it is replaced by "
                      f"the download. The samples now live in {tiers_path('samples', base)}.", stacklevel=2)
    arch = arch_dir / name
    fresh = force_download or not arch.exists()
    try:
        entry = _fetch_checked(url, arch, force_download, base, timeout, retries, progress, checks) if fresh else None
    except DownloadError as e:
        if look_alike is not None:
            e.add_note(f"{dest} holds only the synthetic look-alike written by {look_alike}, which untar_data never "
                       f"returns in place of the real dataset. To work offline, call {look_alike}() itself (it "
                       f"writes to {tiers_path('samples', base)}), or delete {dest}.")
        raise
    try:
        res = extract_archive(arch, dest, force=force_download or look_alike is not None)
    except DownloadError:
        arch.unlink(missing_ok=True)  # so the next call fetches a fresh copy
        raise
    # Only an archive that extracted cleanly is trusted enough to be recorded in the registry.
    if fresh and entry is None and checks is None:
        _record_check(url, arch, base)
    return Path(res)  # tiers' Path, so `path.ls()` works as in fastai


def _sample_maker(folder: Path) -> str | None:
    "The name of the sample maker whose finished look-alike `folder` is (its `SAMPLE_MARKER`), else None."
    marker = folder / SAMPLE_MARKER
    if not marker.is_file():
        return None
    try:
        name = marker.read_text().strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    if name.startswith("make_") and name.isidentifier():
        return name
    # written before the marker held the maker's name: the folder is named after the sample
    return "make_digits_folder" if folder.name == "digits" else f"make_{folder.name}"
