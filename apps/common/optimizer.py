"""The optimizer and the learning-rate schedule of a run, built one way for every app and
for the tuner."""

from __future__ import annotations

import keras

OPTIMIZER_NAMES = ("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad")


def make_optimizer(options) -> keras.optimizers.Optimizer:
    """The optimizer of `options` (an app's config, or any object with its fields): the
    named Keras optimizer at `learning_rate`; `clip_norm` > 0 sets its `global_clipnorm`,
    `clip_value` > 0 (an attribute only some option sets have) its `clipvalue` (each
    gradient entry clipped to [-clip_value, clip_value]; not both),
    `ema_momentum` > 0 makes it keep a moving average of the weights (`use_ema`), SGD
    takes Nesterov `momentum` (default 0.9)."""
    name = getattr(options, "optimizer", "adam")
    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {name!r}; one of {', '.join(OPTIMIZER_NAMES)}")
    kwargs: dict = {"learning_rate": options.learning_rate}
    clip_norm = getattr(options, "clip_norm", 0.0)
    if clip_norm > 0:
        kwargs["global_clipnorm"] = clip_norm
    clip_value = getattr(options, "clip_value", 0.0)
    if clip_value > 0:
        if clip_norm > 0:
            raise ValueError("clip by norm or by value, not both (clip_norm and clip_value > 0)")
        kwargs["clipvalue"] = clip_value
    ema_momentum = getattr(options, "ema_momentum", 0.0)
    if ema_momentum > 0:
        if not ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in [0, 1), got {ema_momentum}")
        kwargs.update(use_ema=True, ema_momentum=ema_momentum)
    if name == "sgd":
        momentum = getattr(options, "momentum", 0.9)
        return keras.optimizers.SGD(momentum=momentum, nesterov=momentum > 0, **kwargs)
    return keras.optimizers.get({"class_name": name, "config": kwargs})


class ReduceLROnPlateauFrom(keras.callbacks.ReduceLROnPlateau):
    """`ReduceLROnPlateau` that counts no stalled epoch before `start_from_epoch` (as
    `EarlyStopping`'s argument: the first epochs, 0-based, are not judged). A score that
    stays flat at first (BLEU of averaged weights, about 0 for a few epochs) then cannot
    halve the rate before training has begun. Early epochs still log `learning_rate` and
    still set the best value the later ones are compared with."""

    def __init__(self, start_from_epoch: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.start_from_epoch = start_from_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_from_epoch:
            super().on_epoch_end(epoch, logs)
            return
        patience, self.patience = self.patience, float("inf")
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.patience = patience
            self.wait = 0


def schedule_callbacks(config, monitor_mode: str) -> list[keras.callbacks.Callback]:
    """The callback of `--lr-schedule` (none for `constant`)."""
    if config.lr_schedule == "plateau":
        return [
            ReduceLROnPlateauFrom(
                start_from_epoch=config.lr_decay_start_epoch,
                monitor=config.monitor,
                mode=monitor_mode,
                factor=config.lr_decay_factor,
                patience=config.lr_decay_patience,
                min_lr=config.min_learning_rate,
                verbose=1,
            )
        ]
    if config.lr_schedule == "inverse_time":
        rate, decay = config.learning_rate, config.lr_inverse_time_decay
        return [keras.callbacks.LearningRateScheduler(lambda epoch: rate / (1.0 + decay * epoch))]
    return []
