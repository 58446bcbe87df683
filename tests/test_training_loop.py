"""The training loop: same seed same result, resume equals an uninterrupted run, early
stopping, checkpoints loaded with weights_only."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from test_training_table import synthetic_table

from permaplug.core import schema
from permaplug.core.errors import ConfigError
from permaplug.core.plugins import get_model
from permaplug.training.checkpoint import load_checkpoint, save_checkpoint
from permaplug.training.config import RunConfig
from permaplug.training.loop import STATE_FILE, TrainConfig, resolve_device, train_model
from permaplug.training.predict import predict_windows, window_set
from permaplug.training.runs import build_model, prepare

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest


@pytest.fixture(scope="module")
def prep():
    cfg = RunConfig(train_years=[2001, 2006], test_years=[2007, 2008], use_z=False)
    return prepare(synthetic_table("2001-01", "2008-12", n_bands=2), cfg), cfg


def _train(prep, name="gru", epochs=3, seed=0, **kw):
    p, cfg = prep
    cfg = RunConfig(**{**cfg.to_dict(), "seed": seed})
    model = build_model(name, p, cfg)
    data = window_set(p.arrays, p.normaliser, p.train)
    # constant lr: the resume test below extends a 2-epoch run to 4 epochs
    tc = TrainConfig(epochs=epochs, batch_size=16, seed=seed, lr_schedule="constant")
    hist = train_model(model, data, tc, progress=False, **kw)
    return model, hist


def test_same_seed_same_result_different_seed_different(prep):
    m1, h1 = _train(prep)
    m2, h2 = _train(prep)
    _, h3 = _train(prep, seed=1)
    assert h1.train == h2.train
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert h1.train != h3.train


@pytest.mark.parametrize("name,weight_decay", [("tcn", 0.0), ("gru", 1e-4)])
def test_adam_on_parameter_lists_equals_the_per_parameter_loop(prep, monkeypatch, name,
                                                               weight_decay):
    """make_optimizer's foreach Adam trains the same weights, bit for bit, as the loop."""
    from permaplug.training import loop

    runs = []
    for foreach in (True, False):
        def adam(net, cfg, foreach=foreach):
            return torch.optim.Adam(net.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay, foreach=foreach)
        monkeypatch.setattr(loop, "make_optimizer", adam)
        p, cfg = prep
        model = build_model(name, p, cfg)
        data = window_set(p.arrays, p.normaliser, p.train)
        tc = TrainConfig(epochs=3, batch_size=16, weight_decay=weight_decay)
        runs.append((model, train_model(model, data, tc, progress=False)))
    (a, ha), (b, hb) = runs
    assert ha.train == hb.train
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
    assert loop.make_optimizer.__name__ == "adam"  # the test replaced it (monkeypatch)
    monkeypatch.undo()
    assert loop.make_optimizer(a, tc).defaults["foreach"] is True


def test_resume_continues_exactly(prep, tmp_path):
    full, hist_full = _train(prep, "tcn", epochs=4)
    _train(prep, "tcn", epochs=2, checkpoint_dir=tmp_path)
    assert (tmp_path / STATE_FILE).exists()
    resumed, hist = _train(prep, "tcn", epochs=4, checkpoint_dir=tmp_path, resume=True)
    assert hist.train == pytest.approx(hist_full.train, rel=1e-6)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_early_stopping_restores_the_best_epoch(prep):
    p, cfg = prep
    months = np.unique(p.train[:, 1])
    val_idx = p.train[p.train[:, 1] >= months[-12]]
    train = window_set(p.arrays, p.normaliser, p.train[p.train[:, 1] < months[-12]])
    val = window_set(p.arrays, p.normaliser, val_idx)
    model = build_model("gru", p, cfg)
    # a learning rate this large makes validation loss stop improving quickly
    hist = train_model(model, train, TrainConfig(epochs=40, batch_size=16, lr=0.05,
                                                 early_stopping=2), val=val, progress=False)
    assert hist.stopped_early and len(hist.train) < 40
    assert len(hist.val) == len(hist.train)
    assert hist.best_epoch == int(np.argmin(hist.val))
    assert len(hist.train) == hist.best_epoch + 1 + 2


def test_early_stopping_needs_validation(prep):
    p, cfg = prep
    with pytest.raises(ConfigError, match="val-fraction"):
        train_model(build_model("gru", p, cfg), window_set(p.arrays, p.normaliser, p.train),
                    TrainConfig(epochs=1, early_stopping=3), progress=False)


def test_checkpoint_round_trip_gives_identical_predictions(prep, tmp_path):
    p, _ = prep
    model, _ = _train(prep, "transformer", epochs=1)
    save_checkpoint(model, tmp_path / "ck", p.normaliser)
    loaded = load_checkpoint(tmp_path / "ck")
    assert type(loaded) is get_model("transformer")
    a = predict_windows(model, p.arrays, p.normaliser, p.test)
    b = predict_windows(loaded, p.arrays, p.normaliser, p.test)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (len(p.test), len(schema.TARGETS))


def test_device_option_is_checked():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="--device"):
        resolve_device("tpu")


def test_cosine_schedule_decays_from_lr_to_a_hundredth():
    from permaplug.training.loop import epoch_lr

    cfg = TrainConfig(epochs=10, lr=1e-3, lr_schedule="cosine")
    lrs = [epoch_lr(cfg, e) for e in range(10)]
    assert lrs[0] == pytest.approx(1e-3)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert lrs[5] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert epoch_lr(TrainConfig(lr=3e-4, lr_schedule="constant"), 7) == 3e-4
    with pytest.raises(ConfigError, match="lr_schedule"):
        epoch_lr(TrainConfig(lr_schedule="step"), 0)


def test_interrupted_mid_epoch_resumes_with_schedule_and_weight_decay(prep, tmp_path):
    p, cfg = prep
    data = window_set(p.arrays, p.normaliser, p.train)
    tc = TrainConfig(epochs=4, batch_size=16, lr_schedule="cosine", weight_decay=1e-3)

    class Interrupting:
        """The training set, interrupted (like Ctrl-C) inside the third epoch."""

        def __init__(self, stop_at):
            self.calls, self.stop_at = 0, stop_at

        def __len__(self):
            return len(data)

        def batch(self, rows):
            self.calls += 1
            if self.calls == self.stop_at:
                raise KeyboardInterrupt
            return data.batch(rows)

    full = build_model("conv1dlstm", p, cfg)
    h_full = train_model(full, data, tc, progress=False)
    per_epoch = -(-len(data) // 16)
    model = build_model("conv1dlstm", p, cfg)
    with pytest.raises(KeyboardInterrupt):
        train_model(model, Interrupting(2 * per_epoch + 3), tc, checkpoint_dir=tmp_path,
                    progress=False)
    assert torch.load(tmp_path / STATE_FILE, weights_only=True)["epoch"] == 1
    resumed = build_model("conv1dlstm", p, cfg)
    h = train_model(resumed, data, tc, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert h.train == pytest.approx(h_full.train, rel=1e-6)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_validation_split_is_the_last_training_months(prep):
    p, cfg = prep
    for fraction in (0.001, 0.25):
        split = prepare(synthetic_table("2001-01", "2008-12", n_bands=2),
                        RunConfig(**{**cfg.to_dict(), "val_fraction": fraction}))
        assert len(split.val) > 0 and len(split.train) + len(split.val) == len(p.train)
        assert split.val[:, 1].min() > split.train[:, 1].max()
    assert len(split.val) == pytest.approx(0.25 * len(p.train), abs=2)


def test_a_band_without_land_is_refused_before_training():
    from permaplug.core.errors import DataError

    table = synthetic_table("2001-01", "2008-12", n_bands=3)
    for v in schema.TARGETS:
        table[v] = table[v].where(table["band"] != 1)
    cfg = RunConfig(train_years=[2001, 2006], test_years=[2007, 2008], use_z=False)
    with pytest.raises(DataError, match=r"band 1 \(61.28-63.29 N\) has no land cell"):
        prepare(table, cfg)


def test_a_corrupt_or_pickled_checkpoint_is_refused_naming_the_file(prep, tmp_path):
    from permaplug.core.errors import DataError

    p, _ = prep
    model, _ = _train(prep, "gru", epochs=1)
    save_checkpoint(model, tmp_path / "ck", p.normaliser)
    (tmp_path / "ck" / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="model.pt: refused by torch.load"):
        load_checkpoint(tmp_path / "ck")
