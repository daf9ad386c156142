"""Intermediate fusion: same-size modality embeddings, masking tokens, concat or attention fusion.

Modalities are ordered ``("ehr", "rna", "ct")``; ``avail`` (B, 3) says which a patient has.
A missing modality's embedding is replaced by that modality's learned masking token.

Fusion modes:
- ``concat``   - the embeddings are concatenated.
- ``simple``   - attention: a shared scorer gives each present modality a score per patient;
  softmax over the present modalities weights the embeddings (masked ones get no weight).
- ``weighted`` - as ``simple`` plus a learned global weight per modality (modality-weighted attention).
"""

from __future__ import annotations

import torch
from torch import nn

from lungai.fusion.models.ct_cnn import CTEncoder
from lungai.fusion.models.ehr_mlp import EHREncoderNet
from lungai.fusion.models.gene_gnn import GeneGNN

ORDER = ("ehr", "rna", "ct")
FUSIONS = ("concat", "simple", "weighted")


class FusionModel(nn.Module):
    def __init__(self, n_classes: int, modalities=ORDER, ehr_dim: int = 0, n_genes: int = 0, edge_index=None,
                 emb: int = 32, fusion: str = "concat", dropout: float = 0.2):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        self.modalities = [m for m in ORDER if m in modalities]
        self.fusion, self.emb = fusion, emb
        enc = {}
        if "ehr" in self.modalities:
            enc["ehr"] = EHREncoderNet(ehr_dim, emb, dropout=dropout)
        if "rna" in self.modalities:
            enc["rna"] = GeneGNN(n_genes, edge_index, emb, dropout=dropout)
        if "ct" in self.modalities:
            enc["ct"] = CTEncoder(emb, dropout=dropout)
        self.encoders = nn.ModuleDict(enc)
        self.mask_tokens = nn.Parameter(torch.randn(len(self.modalities), emb) * 0.01)
        if fusion == "concat":
            head_in = emb * len(self.modalities)
        else:
            head_in = emb
            self.scorer = nn.Sequential(nn.Linear(emb, emb), nn.Tanh(), nn.Linear(emb, 1))
            if fusion == "weighted":
                self.modality_logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(head_in, emb), nn.ReLU(),
                                  nn.Linear(emb, n_classes))

    def embeddings(self, ehr, genes, ct, avail) -> torch.Tensor:
        """(B, M, emb) per-modality embeddings with masking tokens for missing modalities."""
        inputs = {"ehr": ehr, "rna": genes, "ct": ct}
        out = []
        for k, m in enumerate(self.modalities):
            present = avail[:, ORDER.index(m)].bool()
            e = torch.zeros(avail.shape[0], self.emb, dtype=self.mask_tokens.dtype, device=avail.device)
            if present.any():
                e = e.index_put((present.nonzero(as_tuple=True)[0],), self.encoders[m](inputs[m][present]))
            out.append(torch.where(present.unsqueeze(1), e, self.mask_tokens[k].expand_as(e)))
        return torch.stack(out, dim=1)

    def attention(self, e: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """(B, M) modality weights (uniform over present modalities for concat)."""
        present = torch.stack([avail[:, ORDER.index(m)] for m in self.modalities], dim=1).bool()
        present = present | ~present.any(dim=1, keepdim=True)   # nothing present: use the tokens
        if self.fusion == "concat":
            w = present.float()
            return w / w.sum(dim=1, keepdim=True)
        s = self.scorer(e).squeeze(-1)
        if self.fusion == "weighted":
            s = s + torch.log_softmax(self.modality_logits, dim=0)
        return torch.softmax(s.masked_fill(~present, -1e4), dim=1)

    def fused(self, ehr, genes, ct, avail) -> torch.Tensor:
        e = self.embeddings(ehr, genes, ct, avail)
        if self.fusion == "concat":
            return e.flatten(1)
        return (self.attention(e, avail).unsqueeze(-1) * e).sum(dim=1)

    def forward(self, ehr, genes, ct, avail) -> torch.Tensor:
        return self.head(self.fused(ehr, genes, ct, avail))
