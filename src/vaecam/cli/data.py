"""``vaecam data download ...``: fetch public datasets whose licence allows it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vaecam.cli.common import option
from vaecam.errors import ConfigError


def _download(args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    if args.dataset == "mnist":
        from vaecam.data.mnist import load_digits

        load_digits("torchvision", dest, download=True, train=True)
        load_digits("torchvision", dest, download=True, train=False)
        print(f"MNIST in {dest}/MNIST; use --source torchvision --mnist-root {dest}")
    elif args.dataset == "dsprites":
        from vaecam.data.dsprites import download_dsprites

        print(f"dSprites: {download_dsprites(dest, sha256=args.sha256)}")
    elif args.dataset == "ucsd":
        from vaecam.data.ucsd import download_ucsd

        print(f"UCSD: {download_ucsd(dest, sha256=args.sha256)}")
    else:  # argparse limits the choices; kept for direct calls
        raise ConfigError(f"no download for '{args.dataset}'")
    return 0


def register(verbs: argparse._SubParsersAction, groups: dict[str, Any]) -> None:
    download = groups["data"].add_parser(
        "download", help="download MNIST, dSprites or UCSD (MVTec-AD needs its licence form)",
        description="Download a public dataset into --dest, checked by hash where one is known. "
        "MVTec-AD is not downloadable automatically: accept its licence at "
        "https://www.mvtec.com/company/research/datasets/mvtec-ad and unpack it yourself.")
    download.add_argument("dataset", choices=["mnist", "dsprites", "ucsd"], help="which dataset")
    option(download, "--dest", required=True, help="folder to download into")
    option(download, "--sha256", help="expected SHA-256 of the archive (dsprites, ucsd)")
    download.set_defaults(handler=_download)
