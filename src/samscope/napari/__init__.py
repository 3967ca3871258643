"""samscope's napari plugin: annotators for images, volumes, time-lapses and image series.

The widgets are thin front-ends over the library: embeddings come from
:func:`samscope.embeddings.compute_embeddings` (through the zarr cache), prompts are decoded by
:mod:`samscope.prompting`, automatic segmentation is :mod:`samscope.instance`, volumes are
:mod:`samscope.multidim`, training is :mod:`samscope.training`. The GUI-free state the widgets
share (committed objects with undo, model loading, the two halves of automatic segmentation)
lives in :mod:`samscope.napari.session` and is tested without Qt.

Install with ``pip install "samscope[gui]"``; open an annotator with ``samscope annotate IMAGE``
or from napari's *Plugins → samscope* menu. Importing this package imports nothing heavy; the
widget modules import napari and Qt.
"""

__all__: list[str] = []
