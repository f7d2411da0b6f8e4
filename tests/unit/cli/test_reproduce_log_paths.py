"""reproduce.log writes paths relative to --out and the data root."""

from __future__ import annotations

from vaecam.cli.reproduce import LOG_NAME, _log_file


def test_log_lines_name_out_and_data_not_the_machine(tmp_path):
    out, data = tmp_path / "out", tmp_path / "shared" / "data"
    out.mkdir()
    with _log_file(out / LOG_NAME, data) as logger:
        logger.info("=== vaecam reproduce --out %s --data %s", out, data)
        logger.info("trained %s from %s", out / "ucsd" / "seed0", data / "UCSDped2")
    text = (out / LOG_NAME).read_text()
    assert str(tmp_path) not in text
    assert "--out $OUT --data $DATA" in text
    assert "trained $OUT/ucsd/seed0 from $DATA/UCSDped2" in text
