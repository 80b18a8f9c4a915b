# interactvlm_ros on ROS 2 Jazzy.
#   CPU:  docker build -t interactvlm_ros .
#   GPU:  docker build --build-arg VARIANT=gpu -t interactvlm_ros:gpu .   (CUDA torch + TensorRT 10)
#   run:  docker run --rm -it --net=host --gpus all interactvlm_ros:gpu
# Python dependencies use the same pins as the CPU machines (constraints.txt); only torch's build differs.
ARG ROS_DISTRO=jazzy
FROM ros:${ROS_DISTRO}-ros-base

ARG ROS_DISTRO
ARG VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ARG TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu128
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG TENSORRT_SPEC="tensorrt-cu12>=10,<11"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    INTERACTVLM_CACHE_DIR=/var/cache/interactvlm \
    ANNY_CACHE_DIR=/var/cache/interactvlm/anny \
    RMW_IMPLEMENTATION=rmw_cyclonedds_cpp

RUN apt-get update && apt-get install -y --no-install-recommends \
        python3-venv python3-pip libusb-1.0-0 libgl1 libglib2.0-0 \
        ros-${ROS_DISTRO}-rmw-cyclonedds-cpp ros-${ROS_DISTRO}-cv-bridge \
        ros-${ROS_DISTRO}-visualization-msgs ros-${ROS_DISTRO}-diagnostic-msgs ros-${ROS_DISTRO}-tf2-msgs \
        ros-${ROS_DISTRO}-lifecycle-msgs ros-${ROS_DISTRO}-launch-ros \
    && rm -rf /var/lib/apt/lists/*

# A venv that still sees the ROS Python packages (rclpy, cv_bridge, colcon) of the image, ignored by colcon; colcon
# runs with its python, so the installed entry points start with it (as `make ros2-build`; docs/ros2-and-docker.md).
RUN python3 -m venv --system-site-packages /opt/venv && touch /opt/venv/COLCON_IGNORE
ENV PATH=/opt/venv/bin:${PATH}

COPY ros2_ws/src/interactvlm_ros/constraints.txt /tmp/constraints.txt
RUN if [ "${VARIANT}" = "gpu" ]; then \
        pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_CUDA_INDEX}" \
        && pip install "${TENSORRT_SPEC}" --extra-index-url https://pypi.nvidia.com \
        && python3 -c "import tensorrt; assert int(tensorrt.__version__.split('.')[0]) >= 10, tensorrt.__version__" ; \
    else \
        pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_CPU_INDEX}" ; \
    fi

WORKDIR /ws
COPY . /ws
RUN pip install -c /tmp/constraints.txt -e ros2_ws/src/interactvlm_ros \
    && source /opt/ros/${ROS_DISTRO}/setup.bash \
    && /opt/venv/bin/python -m colcon build --base-paths ros2_ws/src \
    && echo "source /ws/install/setup.bash" >> /etc/bash.bashrc

# MediaPipe 0.10.21 needs numpy<2: its own venv, run as the reconstruction's keypoint worker (README).
RUN python3 -m venv /opt/venv-mediapipe \
    && /opt/venv-mediapipe/bin/pip install --no-deps -r ros2_ws/src/interactvlm_ros/constraints-mediapipe.txt
ENV INTERACTVLM_MEDIAPIPE_PYTHON=/opt/venv-mediapipe/bin/python

ENTRYPOINT ["/bin/bash", "-c", "source /opt/ros/${ROS_DISTRO}/setup.bash && source /ws/install/setup.bash && exec \"$@\"", "--"]
CMD ["ros2", "launch", "interactvlm_ros", "interactvlm.launch.py"]
