"""conveyor: a self-hosted worker environment in the style of Elastic Beanstalk's worker tier."""

__version__ = "0.1.0"
