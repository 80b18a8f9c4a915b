"""interactvlm_ros: an ament_python ROS 2 package that is also pip-installable without ROS.

colcon installs launch/ and config/ (symlinks to the repository's top-level folders) into
share/interactvlm_ros; ``pip install -e .`` gives the ``interactvlm`` command without any ROS install.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "interactvlm_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="InteractVLM human-object contact estimation as a ROS 2 node, CLI and library",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "tests"]),
    include_package_data=True,
    package_data={PACKAGE: ["model/presets/*.yaml", "model/presets/*.json", "assets/**/*", "benchmarks/*.json",
                            "transport/msg_definitions/*.msg"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py") + glob("launch/*.rviz")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=[
        "numpy>=1.24",
        "torch>=2.4",
        "pyyaml>=6",
        "scipy>=1.10",
        "pillow>=10",
        "tqdm>=4.60",
        "trimesh>=4",
        "anny>=0.6",
        "transformers>=5.0",
        "safetensors>=0.4",
        "sentencepiece>=0.2",
        "tokenizers>=0.20",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "cyclonedds>=11.0",
        "rosbags>=0.10",
        "mcap>=1.1",
        "mcap-ros2-support>=0.5",
        "scikit-image>=0.22",
        "open3d-cpu>=0.19; platform_machine == 'x86_64'",
    ],
    extras_require={
        # SMPL-family loader (MPI non-commercial licence): kept optional.
        "smplx": ["smplx>=0.1.28"],
        # GPU machines: CUDA torch comes from the PyTorch index (see README); TensorRT 10 from NVIDIA's index.
        "gpu": ["tensorrt-cu12>=10.0", "onnxruntime-gpu>=1.18"],
        "test": ["pytest>=8", "ruff>=0.6"],
    },
    entry_points={
        "console_scripts": [
            "interactvlm = interactvlm_ros.cli.main:main",
            # `ros2 run interactvlm_ros interactvlm_node` (needs a sourced ROS 2 install)
            "interactvlm_node = interactvlm_ros.cli.node:ros_node_main",
        ],
    },
    zip_safe=False,
)
