"""Batch-level utilities of the models."""
from .itm_pairs import ITMPairs, num_loss_rows
from .pairing import (candidate_pool, caption_identity, gather_with_local_grad,
                      paired_batch)
from .part_configs import backbone_config, check_vocabulary, head_config
from .reference_mapping import (ReferenceConversion, compare_with_model,
                                convert_reference_state_dict,
                                load_reference_checkpoint)
from .retrieval import (Ranking, itc_similarity, paired_itc_similarity,
                        rank_candidates, rank_order, rerank, run_in_batches,
                        topk_candidates)
from .text_masking import (MaskedText, bert_mask_tokens, num_mask_slots,
                           unmask_input_ids)

__all__ = [
    'ITMPairs', 'num_loss_rows', 'backbone_config', 'check_vocabulary',
    'head_config', 'candidate_pool', 'caption_identity', 'paired_batch',
    'gather_with_local_grad', 'MaskedText', 'bert_mask_tokens',
    'num_mask_slots', 'unmask_input_ids', 'ReferenceConversion',
    'convert_reference_state_dict', 'compare_with_model',
    'load_reference_checkpoint', 'run_in_batches', 'itc_similarity',
    'topk_candidates', 'rerank', 'rank_order', 'rank_candidates', 'Ranking',
    'paired_itc_similarity'
]
