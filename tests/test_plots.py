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
