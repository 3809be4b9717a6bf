using Gosset.Cli;

return CliApp.Run(args);
