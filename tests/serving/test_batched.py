"""What the server computes for a dynamic batch (serving/batched.py) and what clients send (the model's square
input, serving/protocol.model_input_image) equal local inference: no server needed here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_serving import assert_same

from interactvlm_ros.serving.protocol import model_input_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEMO = Path(__file__).resolve().parents[2] / "ros2_ws/src/interactvlm_ros/interactvlm_ros/assets/demo"


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(DEMO / "20251125_0001_mug.png").convert("RGB"))


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def predictor(request):
    from interactvlm_ros.config import load_config
    from interactvlm_ros.model import ContactPredictor

    return ContactPredictor.from_config(load_config(None, [f"inference.backend={request.param}"]))


@pytest.mark.parametrize("size", [128, 112, 224])
def test_the_square_reads_like_the_frame(photo, size):
    """The clip processor gives the same pixels for a frame and for its model square, bit for bit: landscape,
    portrait, odd sizes, a frame smaller than the input (upscaled), one more than 8x larger (box-reduced)."""
    from interactvlm_ros.model.configuration import VisionConfig
    from interactvlm_ros.model.vision import ClipImageProcessor

    processor = ClipImageProcessor(VisionConfig(image_size=size))
    rng = np.random.default_rng(size)
    frames = [photo, np.ascontiguousarray(photo.transpose(1, 0, 2)), photo[:333, :517],
              np.asarray(Image.fromarray(photo).resize((97, 61))),
              rng.integers(0, 256, (size * 9 + 5, size * 10 + 3, 3), dtype=np.uint8)]
    for frame in frames:
        square = model_input_image(frame, size)
        assert square.shape == (size, size, 3) and square.dtype == np.uint8
        assert np.array_equal(processor(square).numpy(), processor(frame).numpy()), frame.shape


def test_a_batch_equals_predict_per_image(predictor, photo):
    """Four different images with one name each, then with two names each (one image with a name the model
    does not know: unequal question counts), then a request with a refused name among good ones."""
    from interactvlm_ros.serving.batched import batch_problem, predict_human_batch

    assert batch_problem(predictor) == ""
    rng = np.random.default_rng(0)
    images = [photo, np.ascontiguousarray(photo[:, ::-1]), (photo * 0.6).astype(np.uint8),
              rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)]
    for names in ([["cup"], ["ball"], ["cup"], ["cup"]],
                  [["cup", "ball"], ["ball", "couch"], ["ball", "cup"], ["cup", "ball"]]):
        done = predict_human_batch(predictor, images, names)
        assert all(e is not None for e in done.encoded)
        for image, asked, result in zip(images, names, done.results, strict=True):
            assert_same(result, predictor.predict(image, asked), view_masks=True)
    done = predict_human_batch(predictor, images[:3], [["cup"], ["[]"], ["ball"]])
    assert isinstance(done.results[1], ValueError) and done.encoded[1] is None
    assert_same(done.results[0], predictor.predict(images[0], ["cup"]), view_masks=True)
    assert_same(done.results[2], predictor.predict(images[2], ["ball"]), view_masks=True)


def test_squares_in_a_batch_give_the_frames_contacts(predictor, photo):
    from interactvlm_ros.serving.batched import predict_human_batch

    size = predictor.clip_processor.size
    frames = [photo, np.ascontiguousarray(photo[40:, 10:600])]
    done = predict_human_batch(predictor, [model_input_image(f, size) for f in frames], [["cup"], ["cup"]])
    for frame, result in zip(frames, done.results, strict=True):
        assert_same(result, predictor.predict(frame, ["cup"]), view_masks=True)
