"""The stage fingerprints of ``vaecam reproduce`` do not depend on how the presets are written.

A finished reproduction is skipped stage by stage while each stage's fingerprint is unchanged.
The literals below are the fingerprints of every stage of the smoke and cpu plans as the flat
presets gave them; a change to the preset files' layout (or to how a stage's configuration is
read from them) that alters any of them would re-run finished reproductions. A deliberate
change of a preset's values changes its stages' literals here (the cpu MNIST stages last
changed when its lr became 3e-4, chosen on training digits).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vaecam.reproduce.plan import Request, build_plan
from vaecam.reproduce.stages import StageRunner

USER_MNIST = "presets: {cpu: {train: {lr: 0.002}, localize: {resamples: 500, tune_images: 32}}}\n"
USER_UCSD = "presets: {cpu: {localize: {frames: anomalous-only}, train: {max_epochs: 3}}}\n"


def _data_root(root: Path) -> Path:
    """A data folder with one UCSD and one MVTec-AD layout (no images: planning reads none)."""
    for sub in ("UCSDped2/Train", "UCSDped2/Test", "mvtec/screw/train/good",
                "mvtec/screw/test/scratch", "mvtec/screw/ground_truth/scratch"):
        (root / sub).mkdir(parents=True)
    return root


def fingerprints(request: Request) -> dict[str, str]:
    """Every stage's fingerprint, by stage name, as ``vaecam reproduce`` computes it."""
    plan = build_plan(request)
    runner = StageRunner(plan.out, data=plan.discovery.root)
    found = {}
    for stage in plan.stages:  # in order: a stage's fingerprint holds those of its needs
        found[stage.name] = runner.fingerprints[stage.name] = runner.fingerprint(stage)
    return found


SMOKE = {
    "data/mvtec": "7eefdb380a9c256e",
    "data/ucsd": "e097bb96920db9e8",
    "dsprites/ad-factorvae_gamma40/seed0": "23840eec009d9263",
    "dsprites/ad-factorvae_gamma40/seed0/score": "84aa6fd2b229a7f4",
    "dsprites/factorvae_gamma40/seed0": "57c8774e310ccbdc",
    "dsprites/factorvae_gamma40/seed0/score": "b57e3b377c8e9d43",
    "dsprites/summary": "7dde01e581d7ed29",
    "mnist/digit1/seed0": "4a2809f8b940cb6c",
    "mnist/digit3/seed0": "adf7c7252aee65cb",
    "mnist/figures": "4fea9430fdd1cc31",
    "mnist/localize_digit1": "54cf0a87e16bfeb6",
    "mnist/localize_digit3": "9256e1cd195cdfcb",
    "mvtec/synthetic/localize": "2e7414002dfad511",
    "mvtec/synthetic/train/seed0": "0571ec8f255cb3fb",
    "ucsd/UCSDped1/localize": "8a7d532abef07ca3",
    "ucsd/UCSDped1/train/seed0": "c69c87b67230a10c",
}

CPU = {
    "mnist/digit1/seed0": "607a1a29b0e646b8",
    "mnist/digit1/seed1": "21a5780b6e8eddc6",
    "mnist/digit1/seed2": "64296b652bd7c94a",
    "mnist/digit3/seed0": "67cb7d9b2ddf2bc0",
    "mnist/digit3/seed1": "e204da90d13fe01a",
    "mnist/digit3/seed2": "c802c913b4906b04",
    "mnist/figures": "f3980a260c587036",
    "mnist/localize_digit1": "2b7c95f7a47db8fc",
    "mnist/localize_digit3": "c64176ef41d31793",
    "mvtec/screw/localize": "ef0019d457d0de2f",
    "mvtec/screw/train/seed0": "9261e4ff1b739ddb",
    "mvtec/screw/train/seed1": "a2bf5e9fd5e168c0",
    "mvtec/screw/train/seed2": "0ec86e1f3dfb96f0",
    "ucsd/UCSDped2/localize": "1cbbe690830246f3",
    "ucsd/UCSDped2/train/seed0": "8ab155b30c112c73",
    "ucsd/UCSDped2/train/seed1": "a4914e3901851e3c",
    "ucsd/UCSDped2/train/seed2": "94294c35771cbfe6",
    "dsprites/summary": "186053ca88b61189",
    **{f"dsprites/{model}_gamma40/seed{seed}{score}": fingerprint
       for (model, seed, score), fingerprint in zip(
           [(m, s, t) for m in ("ad-factorvae", "factorvae") for s in range(10)
            for t in ("", "/score")],
           ["192f62d49ab73c3d", "c676101e80788fad", "ee1d1fc4ab83a7d8", "829c2a7b2513b3b1",
            "4f9b26e5a65f1883", "58af3b7857b6be09", "192c81ab6adaee11", "46cc647b38e4f94e",
            "dae55cf3289e9fa2", "9e504e1d7eb68245", "832b25ac41adbb3c", "fbde7c984de5c36d",
            "971b2e1e25b3517d", "80e099e0822ddbde", "3a69041aee1a5094", "ae8dd6647c7f0453",
            "60957afe98c7bd6e", "2a42016a40e5c58e", "f2296eb868b42052", "ac6d17d298c440b7",
            "594466c9476068a0", "896e7d8cf44be8da", "b842ac228c99fd24", "b7cf1106c836fdc4",
            "a8eb50387d23cc9c", "c3771ea57cf97059", "97955941eb7e3bc1", "34c049afa0d6f3cc",
            "3cc9d05f223230a1", "04272079b00342ad", "733996f03a2eda15", "0563a63cfdd1e532",
            "7913711f1e57c171", "0b737a9ce0f51cec", "1577590c3325bd22", "045979b2460d04de",
            "64cb40b5f5bcd3a7", "45f6740aa97800e6", "6dd2c52655316543", "471ced44d1f79df5"],
           strict=True)},
}

# cpu with user config files and overrides: seeds [0], two anomaly protocols, other maps.
OVERRIDDEN = {
    "mnist/digit1/seed0": "0e488400df1443d7",
    "mnist/digit3/seed0": "ea2b084a64059888",
    "mnist/figures": "b6f5b1fd4c0926f1",
    "mnist/localize_digit1": "8cd6e3e51610d6a7",
    "mnist/localize_digit1_erased": "0dddf847a64b5dc8",
    "mnist/localize_digit3": "272a1b32d7a3a18d",
    "mnist/localize_digit3_erased": "d9d7e5d36024ffe5",
    "ucsd/UCSDped2/localize": "984d0344af815709",
    "ucsd/UCSDped2/train/seed0": "f72061cd56f6d6c4",
}


def test_smoke_plan_keeps_its_fingerprints(tmp_path: Path) -> None:
    assert fingerprints(Request(preset="smoke", out=tmp_path / "out")) == SMOKE


@pytest.mark.slow
def test_cpu_plan_keeps_its_fingerprints(tmp_path: Path) -> None:
    request = Request(preset="cpu", out=tmp_path / "out", data=_data_root(tmp_path / "data"))
    assert fingerprints(request) == CPU


def test_user_config_and_overrides_keep_their_fingerprints(tmp_path: Path) -> None:
    mnist, ucsd = tmp_path / "mnist.yaml", tmp_path / "ucsd.yaml"
    mnist.write_text(USER_MNIST)
    ucsd.write_text(USER_UCSD)
    request = Request(preset="cpu", out=tmp_path / "out", data=_data_root(tmp_path / "data"),
                      only=["mnist", "ucsd"], seeds=[0], maps="recon-abs,attention",
                      anomalies=["pasted", "erased"], configs={"mnist": mnist, "ucsd": ucsd})
    assert fingerprints(request) == OVERRIDDEN
