"""``--model`` given a file or folder inside a model folder (its model.json, a member's safetensors, its checkpoints/)
names the model folder to give.  QA train71: `lungai segment CT --model my_model/model.json` said
"my_model/model.json is not a LungAI segmentation model (no model.json)", of model.json itself, with the fix to give a
folder written by train-seg."""

import pytest

from lungai.errors import InputError
from lungai.seg.model_meta import read_meta


def test_a_path_inside_a_model_folder_names_the_folder(tmp_path):
    model = tmp_path / "my model"
    (model / "checkpoints").mkdir(parents=True)
    (model / "model.json").write_text('{"format": "lungai-seg-1"}', encoding="utf-8")
    (model / "member_0.safetensors").write_bytes(b"\0" * 8)
    for inside, what in (("model.json", "a file"), ("member_0.safetensors", "a file"), ("checkpoints", "a folder")):
        with pytest.raises(InputError) as exc:
            read_meta(model / inside)
        assert exc.value.problem == (f"{model / inside} is {what} inside the model folder {model}, not the model "
                                     "folder itself")
        assert exc.value.fix == f"give the folder that holds model.json: --model '{model}'"
        assert "no model.json" not in str(exc.value)


def test_a_folder_without_model_json_keeps_its_words(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(InputError, match=r"images is not a LungAI segmentation model \(no model.json\)"):
        read_meta(tmp_path / "images")
