"""Neural-network building blocks: the sparse prior-masked layer and the DeepGAMI network (compute only)."""
