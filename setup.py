from setuptools import find_packages, setup

setup(
    name='swift-cloud-shunt',
    version='0.1.0',
    description='OpenStack Swift proxy middleware that serves objects '
                'archived to an S3 bucket through the ordinary Swift API',
    long_description=open('README.rst', encoding='utf-8').read(),
    long_description_content_type='text/x-rst',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(exclude=['tests', 'tests.*']),
    install_requires=[
        'swift>=2.30',
        'boto3>=1.26',
        'eventlet>=0.33',
        'PasteDeploy>=2.0',
        # the remote Swift client (protocol "swift" profiles)
        'python-swiftclient>=4',
    ],
    extras_require={
        'test': [
            'pytest>=7',
            'hypothesis>=6',
            'moto[server]>=5',
            # the Keystone v3/v2 tests (a simulated Keystone)
            'python-keystoneclient>=5',
            'pytest-timeout>=2',
            'ruff',
        ],
        # protocol "swift" profiles with auth_type keystone_v3/keystone_v2
        'keystone': ['python-keystoneclient>=5'],
        # tests/bench: the chart, and the shunt's CPU share by sampling
        'bench': ['matplotlib', 'py-spy'],
    },
    entry_points={
        'paste.filter_factory': [
            'cloud_shunt = shunt.proxy.middleware:filter_factory',
        ],
        'console_scripts': [
            'cloud-shunt = shunt.tools.cli:main',
            'cloud-shunt-sync = shunt.daemon.daemon:main',
        ],
    },
    classifiers=[
        'Environment :: OpenStack',
        'Programming Language :: Python :: 3',
        'License :: OSI Approved :: Apache Software License',
    ],
)
