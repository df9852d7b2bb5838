from csms_cli.main import main

main()
