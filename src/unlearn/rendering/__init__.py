"""The rendering kit every report, demo, scenario, sweep and study writes with: markdown tables and number formats
with one missing glyph (:mod:`.tables`), figure sections (:mod:`.figures`), the plots (:mod:`.plots`) and the
gradient-weight panels (:mod:`.gradient_weights`)."""
