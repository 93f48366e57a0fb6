"""Value types of the training script's command-line flags."""

import argparse


def fractions(text: str) -> list[float]:
    """``0.6,0.2,0.2`` -> [0.6, 0.2, 0.2]: the train, validation and test fractions."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected fractions such as 0.6,0.2,0.2, got {text!r}"
        ) from None
    if (
        not 1 <= len(values) <= 3
        or any(v < 0 for v in values)
        or abs(sum(values) - 1) > 1e-6
    ):
        raise argparse.ArgumentTypeError(
            f"expected 1 to 3 fractions adding up to 1, got {text!r}"
        )
    return values


def _or_none(convert, what: str):
    """A flag value that may also be ``none`` (to turn a setting off)."""

    def parse(text: str):
        if text.strip().lower() == "none":
            return None
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {what} or none, got {text!r}"
            ) from None

    parse.__name__ = what  # argparse names the type in its messages
    return parse


optional_int = _or_none(int, "an integer")
optional_float = _or_none(float, "a number")
optional_call = _or_none(str, "a call such as StepLR(step_size=5)")


def names(text: str) -> list[str]:
    """``accuracy,f1`` -> ["accuracy", "f1"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


def given_flags(parser, argv, args) -> set:
    """The flags written in argv (their destinations), as opposed to those left at their
    defaults: a resumed run takes the others from its checkpoint."""
    # argparse fills in a default only where the namespace lacks the attribute
    unset = object()
    probe = argparse.Namespace(**dict.fromkeys(vars(args), unset))
    parser.parse_args(argv, probe)
    return {key for key, value in vars(probe).items() if value is not unset}
