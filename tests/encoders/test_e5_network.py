"""e5's network in plain torch computes what transformers' BertModel computes."""

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from sktail.encoders import _e5
from sktail.encoders._e5_memory import _FloatTable
from sktail.encoders._e5_network import E5Network, Q4Embedding

DIMS = {"hidden": 64, "layers": 2, "heads": 4, "ffn": 96, "max_positions": 40, "type_vocab": 2, "vocab": 50}


def _random_blocks(n_blocks, seed=0):
    rng = np.random.default_rng(seed)
    blocks = np.zeros(n_blocks, dtype=_e5._Q4_BLOCK)
    blocks["scale"] = rng.normal(0, 0.05, n_blocks).astype(np.float16)
    blocks["nibbles"] = rng.integers(0, 256, (n_blocks, 16), dtype=np.uint8)
    return blocks


def test_q4_rows_equal_the_whole_table_dequantisation():
    blocks = _random_blocks(DIMS["vocab"] * DIMS["hidden"] // 32)
    table = _e5._dequantize_q4_0(blocks.tobytes(), 0, DIMS["vocab"] * DIMS["hidden"]).reshape(DIMS["vocab"], -1)
    embedding = Q4Embedding.from_blocks(blocks, DIMS["hidden"])
    ids = torch.tensor([[3, 0, 49, 3], [7, 7, 1, 2]])
    out = embedding(ids)
    assert out.shape == (2, 4, DIMS["hidden"]) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.from_numpy(table)[ids], rtol=0, atol=0)


def test_q4_refuses_a_width_that_is_not_whole_blocks():
    with pytest.raises(ValueError, match="do not make rows of width 48"):
        Q4Embedding.from_blocks(_random_blocks(10), 48)


@pytest.mark.parametrize("seed", [0, 1])
def test_network_matches_bert_model_with_padding(seed):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=DIMS["vocab"], hidden_size=DIMS["hidden"], num_hidden_layers=DIMS["layers"],
                        num_attention_heads=DIMS["heads"], intermediate_size=DIMS["ffn"], hidden_act="gelu",
                        max_position_embeddings=DIMS["max_positions"], type_vocab_size=DIMS["type_vocab"],
                        layer_norm_eps=1e-12, pad_token_id=1, attn_implementation="eager")
    reference = BertModel(config, add_pooling_layer=False).eval()
    state = reference.state_dict()
    words = _FloatTable(state.pop("embeddings.word_embeddings.weight").clone())
    ours = E5Network(DIMS, 1e-12, words)
    ours.load_state_dict({k: v for k, v in state.items() if not k.endswith("position_ids")
                          and not k.endswith("token_type_ids")}, strict=True)
    ours.eval()
    ids = torch.randint(2, DIMS["vocab"], (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    ids[mask == 0] = 1
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)
