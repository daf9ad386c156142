"""Neural networks of the fusion model: one encoder per modality and the fusion head."""

from lungai.fusion.models.ct_cnn import CTEncoder
from lungai.fusion.models.ehr_mlp import EHREncoderNet
from lungai.fusion.models.fusion import FusionModel
from lungai.fusion.models.gene_gnn import GeneGNN

__all__ = ["CTEncoder", "EHREncoderNet", "FusionModel", "GeneGNN"]
