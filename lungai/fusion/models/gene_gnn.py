"""Graph attention network (torch-geometric GATConv) on the gene graph, one graph per patient.

Nodes are genes; a node's input is its expression value plus a learned gene-identity embedding.
Two GATConv layers pass messages along the gene graph; each node is then reduced to one score
and the gene scores are mapped to the patient embedding (so gene identity is kept).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

GENERATED_PREFIX = "torch_geometric.nn.conv."


def drop_generated_sources() -> list[Path]:
    """Delete the module sources torch-geometric writes to the temporary folder when a conv class is first built
    (``torch_geometric.template.module_from_template``, ``delete=False``): the modules are already loaded, so the
    files are only left-overs - one set per process, never cleaned up by the library.  Returns the files removed."""
    tmp = Path(tempfile.gettempdir()).resolve()
    removed = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(GENERATED_PREFIX) and path and Path(path).resolve().parent == tmp:
            Path(path).unlink(missing_ok=True)
            removed.append(Path(path))
    return removed


class GeneGNN(nn.Module):
    def __init__(self, n_genes: int, edge_index: torch.Tensor, emb: int = 32, hidden: int = 8,
                 heads: int = 2, gene_dim: int = 4, dropout: float = 0.2):
        super().__init__()
        from torch_geometric.nn import GATConv

        self.n_genes = n_genes
        self.register_buffer("edge_index", torch.as_tensor(edge_index, dtype=torch.long), persistent=False)
        self.gene_embedding = nn.Embedding(n_genes, gene_dim)
        self.conv1 = GATConv(1 + gene_dim, hidden, heads=heads, concat=True, dropout=0.0)
        self.conv2 = GATConv(hidden * heads, hidden, heads=1, concat=False, dropout=0.0)
        drop_generated_sources()
        self.node_score = nn.Linear(hidden, 1)
        self.readout = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_genes, emb), nn.ReLU())
        self.act = nn.ELU()
        self._batched = {}

    def _edges(self, batch: int) -> torch.Tensor:
        if batch not in self._batched:
            e = self.edge_index
            offsets = torch.arange(batch, device=e.device).repeat_interleave(e.shape[1]) * self.n_genes
            self._batched = {batch: e.repeat(1, batch) + offsets}
        return self._batched[batch]

    def forward(self, genes: torch.Tensor) -> torch.Tensor:
        b, g = genes.shape
        ident = self.gene_embedding.weight.unsqueeze(0).expand(b, g, -1)
        x = torch.cat([genes.unsqueeze(-1), ident], dim=-1).reshape(b * g, -1)
        e = self._edges(b)
        h = self.act(self.conv1(x, e))
        h = self.act(self.conv2(h, e))
        scores = self.node_score(h).view(b, g) + genes        # residual keeps the raw expression signal
        return self.readout(scores)
