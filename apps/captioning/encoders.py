"""Image encoders: a small CNN trained from scratch, or any `keras.applications` backbone.

An encoder maps uint8 images `[B, S, S, 3]` to `(grid [B, h, w, C], vector [B, D])`: the
last convolutional feature map (what Show-Attend-Tell attends over) and the image vector
(the CNN's last hidden layer with the classifier's softmax dropped: VGG's `fc2`, the
global average of the grid for the other backbones and the small CNN). Each backbone's own
`preprocess_input` runs inside the model, so exports take raw pixels.
"""

from __future__ import annotations

import os

import keras

PACKAGE = "captioning"
#: `keras.applications` module holding each backbone's `preprocess_input`.
PREPROCESSING_MODULES = {
    "VGG16": "vgg16", "VGG19": "vgg19", "ResNet50": "resnet", "ResNet101": "resnet",
    "ResNet152": "resnet", "ResNet50V2": "resnet_v2", "ResNet101V2": "resnet_v2",
    "ResNet152V2": "resnet_v2", "MobileNet": "mobilenet", "MobileNetV2": "mobilenet_v2",
    "MobileNetV3Small": "mobilenet_v3", "MobileNetV3Large": "mobilenet_v3",
    **{f"EfficientNetB{i}": "efficientnet" for i in range(8)},
    **{f"EfficientNetV2{size}": "efficientnet_v2" for size in ("B0", "B1", "B2", "B3", "S")},
    "DenseNet121": "densenet", "DenseNet169": "densenet", "DenseNet201": "densenet",
    "InceptionV3": "inception_v3", "InceptionResNetV2": "inception_resnet_v2",
    "Xception": "xception", "ConvNeXtTiny": "convnext", "ConvNeXtSmall": "convnext",
}  # fmt: skip
#: Backbones whose last hidden layer is a dense layer of the classifier (needs the top).
DENSE_HIDDEN_LAYERS = {"VGG16": ("block5_conv3", "fc2"), "VGG19": ("block5_conv4", "fc2")}
#: Where Keras downloads ImageNet weights from.
WEIGHTS_HOSTS = (("storage.googleapis.com", 443),)


@keras.saving.register_keras_serializable(package=PACKAGE)
class BackbonePreprocessing(keras.layers.Layer):
    """uint8 pixels -> the input a `keras.applications` backbone expects (its own
    `preprocess_input`); `module` "scale" maps [0, 255] to [0, 1] (the small CNN)."""

    def __init__(self, module: str, **kwargs):
        super().__init__(**kwargs)
        self.module = module

    def call(self, images):
        images = keras.ops.cast(images, "float32")
        if self.module == "scale":
            return images / 255.0
        application = getattr(keras.applications, self.module)
        return application.preprocess_input(images)

    def get_config(self):
        return {**super().get_config(), "module": self.module}


def _small_cnn(image_size: int, filters: int) -> keras.Model:
    """Four stages of 3x3 convolution, ReLU and 2x2 max pooling (filters, 2 x, 4 x, 8 x):
    an `image_size / 16` grid of `8 * filters` features. No batch normalisation: training
    batches are bucketed by caption length, which correlates with the images (one shape
    or two), so batch statistics would carry information that inference lacks."""
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = inputs
    for stage in range(4):
        x = keras.layers.Conv2D(filters * 2**stage, 3, padding="same", activation="relu",
                                kernel_initializer="he_normal", name=f"conv{stage + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{stage + 1}")(x)
    return keras.Model(inputs, x, name="small_cnn")


def check_weights(encoder: str, weights: str) -> None:
    """Fails fast, before any download attempt: a missing weights file, or `imagenet`
    while the download host cannot be reached (naming `--encoder-weights PATH`)."""
    if weights in ("none", "imagenet"):
        if weights == "imagenet" and not network_available():
            raise RuntimeError(
                f"--encoder-weights imagenet: the {encoder} ImageNet weights are downloaded "
                f"from {WEIGHTS_HOSTS[0][0]}, which cannot be reached (no network). Copy the "
                "weights file from a connected machine (Keras keeps it in ~/.keras/models/, "
                f"e.g. after `python -c \"import keras; keras.applications.{encoder}"
                f"(include_top={encoder in DENSE_HIDDEN_LAYERS})\"`) and pass --encoder-weights "
                "PATH, or train from scratch with --encoder-weights none"
            )
        return
    if not os.path.exists(weights):
        raise FileNotFoundError(f"{weights}: no such weights file (--encoder-weights)")


def network_available() -> bool:
    from pipelines.tfds_source import network_available as probe

    return probe(hosts=WEIGHTS_HOSTS)


def build_encoder(
    name: str, image_size: int, small_cnn_filters: int = 32, weights: str = "none"
) -> keras.Model:
    """The encoder `name` ("small_cnn" or a `keras.applications` name) as a model of uint8
    pixels `[B, S, S, 3]` -> `[grid, vector]`, with `weights` "none", "imagenet" or a
    weights file (for the small CNN, a `.weights.h5` of `build_encoder`'s model)."""
    check_weights(name, weights)
    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    if name == "small_cnn":
        backbone = _small_cnn(image_size, small_cnn_filters)
        grid = backbone(BackbonePreprocessing("scale", name="preprocessing")(pixels))
        vector = keras.layers.GlobalAveragePooling2D(name="image_vector")(grid)
        model = keras.Model(pixels, [grid, vector], name="encoder")
        if weights != "none":
            model.load_weights(weights)
        return model
    if name not in PREPROCESSING_MODULES or not hasattr(keras.applications, name):
        raise ValueError(f"--encoder {name!r} is not a keras.applications backbone this app "
                         f"knows; one of small_cnn, {', '.join(PREPROCESSING_MODULES)}")
    application = getattr(keras.applications, name)
    preprocessed = BackbonePreprocessing(PREPROCESSING_MODULES[name], name="preprocessing")(pixels)
    weights_argument = None if weights == "none" else weights
    if name in DENSE_HIDDEN_LAYERS:
        grid_layer, vector_layer = DENSE_HIDDEN_LAYERS[name]
        network = application(include_top=True, weights=weights_argument,
                              input_shape=(image_size, image_size, 3))
        backbone = keras.Model(
            network.input,
            [network.get_layer(grid_layer).output, network.get_layer(vector_layer).output],
            name=name.lower(),
        )
        grid, vector = backbone(preprocessed)
    else:
        backbone = application(include_top=False, weights=weights_argument,
                               input_shape=(image_size, image_size, 3))
        grid = backbone(preprocessed)
        vector = keras.layers.GlobalAveragePooling2D(name="image_vector")(grid)
    return keras.Model(pixels, [grid, vector], name="encoder")
