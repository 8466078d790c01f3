"""tiers.data: The data layer: an overridable `DataLoader`, `TfmdLists`, `Datasets`, `DataLoaders`, the `DataBlock` API, splitters, labellers and `untar_data`."""

__version__ = "0.1.0"
