"""The network of the Hugging Face families: a transformer pooled at its first token."""

from __future__ import annotations

from torch import nn

from ._base import EncoderNetwork

__all__ = ["HFNetwork"]


class HFNetwork(EncoderNetwork):
    """A transformer whose pooled output is the final hidden state of the first token.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The base model (no task head, no pooler).

    See Also
    --------
    HFEncoder : The encoder that builds this network.
    EncoderNetwork : The network contract.

    Examples
    --------
    >>> import torch
    >>> from transformers import BertConfig, BertModel
    >>> from sktail.encoders import HFNetwork
    >>> config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2,
    ...                     num_attention_heads=2, intermediate_size=16)
    >>> network = HFNetwork(BertModel(config, add_pooling_layer=False)).eval()
    >>> batch = {"input_ids": torch.tensor([[2, 5, 6, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    >>> network(batch).shape
    torch.Size([1, 8])
    >>> network.input_embeddings().shape, len(network.layer_stack())
    (torch.Size([20, 8]), 2)
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.hidden_size = int(model.config.hidden_size)

    def forward(self, batch):
        """Compute the [CLS] vector of each text: the first token's final hidden state.

        Parameters
        ----------
        batch : dict of str to Tensor
            ``input_ids`` and ``attention_mask``, as :meth:`HFEncoder.collate` pads them.

        Returns
        -------
        Tensor of shape (batch, hidden_size)
            One pooled vector per text.
        """
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.last_hidden_state[:, 0]

    def forward_embeddings(self, inputs_embeds, attention_mask):
        """Compute the [CLS] vector of each text from its word embeddings (``input_embeddings()[ids]``).

        The same as :meth:`forward` for right-padded batches; ONNX Runtime runs
        this part, with the word-embedding lookup left to torch
        (:mod:`sktail._onnx`).

        Parameters
        ----------
        inputs_embeds : Tensor of shape (batch, length, hidden_size)
            Word embeddings of the padded ids.
        attention_mask : Tensor of shape (batch, length)
            1 for tokens, 0 for padding.

        Returns
        -------
        Tensor of shape (batch, hidden_size)
            One pooled vector per text.
        """
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        return out.last_hidden_state[:, 0]

    def input_embeddings(self):
        """Return the transformer's input word-embedding matrix (``get_input_embeddings()``).

        Returns
        -------
        torch.nn.Parameter
            The matrix itself, of shape ``(vocab_size, hidden_size)``: FGM's target.
        """
        return self.model.get_input_embeddings().weight

    def layer_stack(self):
        """Return the layers at ``model.encoder.layer`` (BERT, RoBERTa, XLM-R, ELECTRA...), or None.

        Returns
        -------
        torch.nn.ModuleList or None
            The transformer layers from the bottom up; None for a model without
            that attribute.
        """
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        return layers if isinstance(layers, nn.ModuleList) else None
