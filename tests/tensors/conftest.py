import pytest


@pytest.fixture
def plt():
    "matplotlib's pyplot on the non-interactive Agg backend; figures are closed after the test."
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")
