"""Plot helpers return figures with the content asked for."""
import torch

from s2s import plots


def test_spectrograms_and_code_grid():
    fig = plots.plot_spectrograms({"original": torch.randn(16000), "reconstruction": torch.randn(16000)}, 16000)
    assert [ax.get_title() for ax in fig.axes] == ["original", "reconstruction"]
    codes = torch.randint(0, 1024, (1, 8, 50))
    fig = plots.plot_codes(codes, frame_rate=50)
    assert fig.axes[0].get_title() == "8 codebooks x 50 frames"
    assert fig.axes[0].images[0].get_extent()[1] == 1.0  # 50 frames at 50 Hz = 1 s


def test_metrics_csv_is_read_per_metric(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss,val/stoi\n0,9,2.0,\n0,19,1.5,\n0,19,,0.8\n")
    series = plots.read_metrics_csv(path)
    assert series["train/loss"] == ([9, 19], [2.0, 1.5]) and series["val/stoi"] == ([19], [0.8])
    fig = plots.plot_training_curves(path, ["train/loss"])
    assert len(fig.axes[0].lines) == 1


def test_a_metric_comes_back_per_logged_version_oldest_first(tmp_path):
    logs = tmp_path / "lightning_logs"
    for version, text in ((0, "step,train/loss\n0,3.0\n1,2.5\n2,2.25\n"), (10, "step,train/loss,lr\n2,2.25,\n3,2.0,\n"),
                          (2, "step,lr\n0,0.1\n")):
        (logs / f"version_{version}").mkdir(parents=True)
        (logs / f"version_{version}" / "metrics.csv").write_text(text)
    killed, no_loss, resumed = plots.metric_by_version(logs, "train/loss")  # version_10 after version_2
    assert killed == {0: 3.0, 1: 2.5, 2: 2.25} and no_loss == {} and resumed == {2: 2.25, 3: 2.0}
    assert plots.metric_by_version(tmp_path / "nothing here") == []
