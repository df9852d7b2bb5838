"""The billing service: tariffs, costs, charge detail records and payments."""
