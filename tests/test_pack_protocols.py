"""`luss pack --protocol`: the method.txt 'Training scheme' line per leaderboard, and the refusals."""

from __future__ import annotations

import zipfile

import pytest
from click.testing import CliRunner

from luss_cli.main import cli
from tests.test_pack import Sub, build_submission
from tools.config.loader import load_config, save_config
from tools.errors import SubmissionError
from tools.packing.method_info import parse_method_text
from tools.packing.pack import check_submission_zip, pack_submission
from tools.packing.protocols import PROTOCOLS, Provenance, read_provenance, write_provenance


@pytest.fixture()
def sub(tmp_path) -> Sub:
    return build_submission(tmp_path)


def _scheme(zip_path) -> str:
    with zipfile.ZipFile(zip_path) as zf:
        info, problems = parse_method_text(zf.read("method.txt").decode())
    assert not problems
    return info.training_scheme


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_each_protocol_writes_its_training_scheme(sub: Sub, protocol: str) -> None:
    write_provenance(sub.pred, Provenance(protocol=protocol if protocol != "free" else "semi"))
    args = ["pack", str(sub.pred), "--data", str(sub.data), "--out", str(sub.out), "--protocol", protocol]
    if not PROTOCOLS[protocol].ids_are_classes:
        args += ["--match", str(sub.match)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert _scheme(sub.out) == PROTOCOLS[protocol].training_scheme
    assert check_submission_zip(sub.out, sub.data, protocol=protocol) == []
    assert PROTOCOLS[protocol].leaderboard in result.output


def test_class_id_protocols_write_the_identity_match(sub: Sub) -> None:
    write_provenance(sub.pred, Provenance(protocol="distance"))
    pack_submission(sub.pred, sub.data, None, sub.out, protocol="distance")
    with zipfile.ZipFile(sub.out) as zf:
        assert zf.read("match.json").decode().strip() == '{"1": 1, "2": 2, "3": 3, "0": 0}'


def test_a_hungarian_match_is_refused_under_distance(sub: Sub) -> None:
    write_provenance(sub.pred, Provenance(protocol="distance"))
    with pytest.raises(SubmissionError) as info:
        pack_submission(sub.pred, sub.data, sub.match, sub.out, protocol="distance")
    assert any("is not the identity" in p for p in info.value.problems)
    assert not sub.out.exists()


@pytest.mark.parametrize(
    ("made_as", "packed_as"),
    [("semi", "fully-unsupervised"), ("fully-unsupervised", "distance"), ("distance", "semi")],
)
def test_predictions_of_another_protocol_are_refused(sub: Sub, made_as: str, packed_as: str) -> None:
    write_provenance(sub.pred, Provenance(protocol=made_as))
    with pytest.raises(SubmissionError) as info:
        pack_submission(sub.pred, sub.data, sub.match, sub.out, protocol=packed_as)
    assert any(f"made under the {made_as} protocol" in p for p in info.value.problems)


def _pred_in_run(sub: Sub, run, override: str):
    """Move the predictions to RUN/predict/test of a run whose config.yaml has ``override``."""
    pred = run / "predict" / "test"
    pred.parent.mkdir(parents=True)
    sub.pred.rename(pred)
    save_config(load_config("demo", [override]), run / "config.yaml")
    return pred


def test_a_run_whose_config_used_folder_names_is_refused_by_every_protocol(sub: Sub, tmp_path) -> None:
    pred = _pred_in_run(sub, tmp_path / "run", "predict.use_folder_labels=true")
    assert read_provenance(pred).folder_labels
    for protocol in PROTOCOLS:
        with pytest.raises(SubmissionError) as info:
            pack_submission(pred, sub.data, sub.match, sub.out, protocol=protocol)
        assert any("use_folder_labels" in p and "config.yaml" in p for p in info.value.problems)


def test_a_semi_run_config_is_read_when_the_folder_has_no_protocol_file(sub: Sub, tmp_path) -> None:
    pred = _pred_in_run(sub, tmp_path / "run", "finetune.labels=train-semi")
    with pytest.raises(SubmissionError, match="protocol"):
        pack_submission(pred, sub.data, sub.match, sub.out, protocol="fully-unsupervised")
    pack_submission(pred, sub.data, None, sub.out, protocol="semi")


def test_distance_needs_evidence(sub: Sub) -> None:
    with pytest.raises(SubmissionError) as info:
        pack_submission(sub.pred, sub.data, None, sub.out, protocol="distance")
    assert any("protocol.json" in p for p in info.value.problems)


def test_check_compares_the_scheme_line(sub: Sub) -> None:
    pack_submission(sub.pred, sub.data, sub.match, sub.out)  # fully-unsupervised: SSL
    problems = check_submission_zip(sub.out, sub.data, protocol="semi")
    assert len(problems) == 1 and "is not the semi protocol's 'SSL+Sup'" in problems[0]
    result = CliRunner().invoke(cli, ["pack", "--check", str(sub.out), "--data", str(sub.data)])
    assert result.exit_code == 0, result.output  # no --protocol given: the line is not judged


def test_training_scheme_is_free_text_only_under_free(sub: Sub) -> None:
    base = ["pack", str(sub.pred), "--data", str(sub.data), "--match", str(sub.match), "--out", str(sub.out)]
    refused = CliRunner().invoke(cli, [*base, "--training-scheme", "Sup"])
    assert refused.exit_code == 2 and "free text is for --protocol free" in refused.output
    allowed = CliRunner().invoke(cli, [*base, "--protocol", "free", "--training-scheme", "SSL+extra data"])
    assert allowed.exit_code == 0, allowed.output
    assert _scheme(sub.out) == "SSL+extra data"


def test_an_unreadable_protocol_file_is_refused(sub: Sub) -> None:
    (sub.pred / "protocol.json").write_text("{not json")
    with pytest.raises(SubmissionError) as info:
        pack_submission(sub.pred, sub.data, sub.match, sub.out)
    assert any("protocol.json: unreadable or names no known protocol" in p for p in info.value.problems)
